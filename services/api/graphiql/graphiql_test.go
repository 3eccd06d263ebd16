package graphiql

import (
	"bytes"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

const (
	testMount    = "/graphiql"
	testEndpoint = "/query"
	testLogin    = "/login"
)

func serve(t *testing.T, h http.Handler, method, target string, hdr http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func getPage(t *testing.T, h http.Handler, target string) string {
	t.Helper()
	rec := serve(t, h, http.MethodGet, target, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200", target, rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("GET %s: Content-Type %q, want text/html", target, ct)
	}
	return rec.Body.String()
}

var refRE = regexp.MustCompile(`(?:src|href)="([^"]*)"`)

// pageRefs returns every src= and href= URL in the page, unescaped.
func pageRefs(page string) []string {
	var refs []string
	for _, m := range refRE.FindAllStringSubmatch(page, -1) {
		refs = append(refs, strings.ReplaceAll(m[1], "&amp;", "&"))
	}
	return refs
}

func TestPage(t *testing.T) {
	h := Handler(testMount, testEndpoint, testLogin)
	for _, target := range []string{testMount, testMount + "/"} {
		t.Run(target, func(t *testing.T) {
			page := getPage(t, h, target)
			for _, want := range []string{
				testMount + "/assets/graphiql.min.js",
				testMount + "/assets/graphiql.min.css",
				testMount + "/assets/react.production.min.js",
				testMount + "/assets/react-dom.production.min.js",
				testMount + "/assets/app.js",
				`data-endpoint="/query"`,
				`data-login-path="/login"`,
				`id="login-form"`,
				`id="logout-button"`,
			} {
				if !strings.Contains(page, want) {
					t.Errorf("page lacks %q", want)
				}
			}
			rec := serve(t, h, http.MethodGet, target, nil)
			csp := rec.Header().Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "connect-src 'self'") {
				t.Errorf("Content-Security-Policy = %q", csp)
			}
			if strings.Contains(csp, "'unsafe-eval'") || strings.Contains(csp, "script-src 'self' 'unsafe-inline'") {
				t.Errorf("Content-Security-Policy allows inline or eval'd script: %q", csp)
			}
			if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q", got)
			}
		})
	}
}

// The CSP forbids inline script, so any inline <script> in the page would
// silently not run.
func TestPageHasNoInlineScript(t *testing.T) {
	page := getPage(t, Handler(testMount, testEndpoint, testLogin), testMount)
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(page, -1) {
		if !strings.Contains(tag, " src=") {
			t.Errorf("inline script tag %q", tag)
		}
	}
	if regexp.MustCompile(`\son[a-z]+=`).MatchString(page) {
		t.Error("page has an inline event handler attribute")
	}
}

// The appliance is offline: everything the page loads must come from this
// handler.
func TestPageLoadsNothingOffOrigin(t *testing.T) {
	h := Handler(testMount, testEndpoint, testLogin)
	page := getPage(t, h, testMount)
	for _, cdn := range []string{"unpkg.com", "cdnjs", "jsdelivr", "googleapis", "http://", "https://"} {
		if strings.Contains(page, cdn) {
			t.Errorf("page references %q", cdn)
		}
		if bytes.Contains(appJS, []byte(cdn)) {
			t.Errorf("app.js references %q", cdn)
		}
	}
	refs := pageRefs(page)
	if len(refs) != 6 {
		t.Errorf("page has %d src/href references, want 6: %q", len(refs), refs)
	}
	for _, ref := range refs {
		u, err := url.Parse(ref)
		if err != nil {
			t.Errorf("bad reference %q: %v", ref, err)
			continue
		}
		if u.Scheme == "data" {
			continue // the empty favicon, which saves a 404 per visit
		}
		if u.Scheme != "" || u.Host != "" {
			t.Errorf("reference %q leaves the origin", ref)
			continue
		}
		rec := serve(t, h, http.MethodGet, ref, nil)
		if rec.Code != http.StatusOK || rec.Body.Len() == 0 {
			t.Errorf("GET %s: status %d, %d bytes", ref, rec.Code, rec.Body.Len())
		}
	}
}

func TestAssets(t *testing.T) {
	h := Handler(testMount, testEndpoint, testLogin)
	cases := map[string]string{
		"graphiql.min.js":             "text/javascript",
		"graphiql.min.css":            "text/css",
		"react.production.min.js":     "text/javascript",
		"react-dom.production.min.js": "text/javascript",
		"app.js":                      "text/javascript",
		"LICENSE.graphiql":            "text/plain",
		"LICENSE.react":               "text/plain",
		"LICENSE.react-dom":           "text/plain",
	}
	for name, wantType := range cases {
		t.Run(name, func(t *testing.T) {
			rec := serve(t, h, http.MethodGet, testMount+"/assets/"+name, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, want 200", rec.Code)
			}
			if rec.Body.Len() == 0 {
				t.Fatal("empty body")
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, wantType) {
				t.Errorf("Content-Type %q, want %s", ct, wantType)
			}
			if got := rec.Header().Get("Cache-Control"); got != "public, max-age=86400" {
				t.Errorf("Cache-Control %q", got)
			}
			if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}

			want := appJS
			if name != "app.js" {
				var err error
				if want, err = fs.ReadFile(vendored, "assets/"+name); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(rec.Body.Bytes(), want) {
				t.Error("body differs from the embedded file")
			}

			etag := rec.Header().Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			rec = serve(t, h, http.MethodGet, testMount+"/assets/"+name, http.Header{"If-None-Match": {etag}})
			if rec.Code != http.StatusNotModified {
				t.Errorf("conditional GET: status %d, want 304", rec.Code)
			}
		})
	}
}

// Every file fetch-assets.sh vendors must be served; a file dropped from
// the embed would otherwise only show up as a broken page.
func TestEveryEmbeddedFileIsServed(t *testing.T) {
	h := Handler(testMount, testEndpoint, testLogin)
	entries, err := fs.ReadDir(vendored, "assets")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 7 {
		t.Errorf("assets/ holds %d files, want the 7 fetch-assets.sh writes", len(entries))
	}
	for _, e := range entries {
		if rec := serve(t, h, http.MethodGet, testMount+"/assets/"+e.Name(), nil); rec.Code != http.StatusOK {
			t.Errorf("GET assets/%s: status %d", e.Name(), rec.Code)
		}
	}
}

func TestHead(t *testing.T) {
	h := Handler(testMount, testEndpoint, testLogin)
	for _, target := range []string{testMount, testMount + "/assets/graphiql.min.js"} {
		rec := serve(t, h, http.MethodHead, target, nil)
		if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
			t.Errorf("HEAD %s: status %d, %d body bytes", target, rec.Code, rec.Body.Len())
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	h := Handler(testMount, testEndpoint, testLogin)
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		for _, target := range []string{testMount, testMount + "/", testMount + "/assets/app.js"} {
			rec := serve(t, h, method, target, nil)
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: status %d, want 405", method, target, rec.Code)
			}
			if got := rec.Header().Get("Allow"); got != "GET, HEAD" {
				t.Errorf("%s %s: Allow %q", method, target, got)
			}
		}
	}
}

func TestNotFound(t *testing.T) {
	h := Handler(testMount, testEndpoint, testLogin)
	for _, target := range []string{
		testMount + "/assets/nope.js",
		testMount + "/assets/",
		testMount + "/assets",
		testMount + "/assets/../graphiql.go",
		testMount + "/assets/assets/graphiql.min.js",
		testMount + "/index.html",
		testMount + "/app.js",
		testMount + "x",
		"/",
		"/assets/graphiql.min.js",
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path = target // bypass cleaning, as a raw request could
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", target, rec.Code)
		}
	}
}

func TestMountNormalisation(t *testing.T) {
	for _, tc := range []struct{ mount, page, asset string }{
		{"/graphiql/", "/graphiql/", "/graphiql/assets/app.js"},
		{"/", "/", "/assets/app.js"},
		{"", "/", "/assets/app.js"},
		{"/api/v1/ide", "/api/v1/ide", "/api/v1/ide/assets/app.js"},
	} {
		h := Handler(tc.mount, testEndpoint, testLogin)
		page := getPage(t, h, tc.page)
		if !strings.Contains(page, `src="`+tc.asset+"?v=") {
			t.Errorf("mount %q: page does not load %s", tc.mount, tc.asset)
		}
		if rec := serve(t, h, http.MethodGet, tc.asset, nil); rec.Code != http.StatusOK {
			t.Errorf("mount %q: GET %s: status %d", tc.mount, tc.asset, rec.Code)
		}
	}
}

// Endpoint and login path come from configuration; they must not be able to
// break out of their attributes.
func TestPageEscapesConfig(t *testing.T) {
	evil := `/q"><script>alert(1)</script>`
	page := getPage(t, Handler(testMount, evil, evil), testMount)
	if strings.Contains(page, "<script>alert") {
		t.Error("endpoint was not escaped")
	}
}

// Works when mounted the way the doc comment says.
func TestServeMux(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle(testMount+"/", Handler(testMount, testEndpoint, testLogin))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, p := range []string{testMount, testMount + "/", testMount + "/assets/graphiql.min.css"} {
		res, err := srv.Client().Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", p, res.StatusCode)
		}
	}
}
