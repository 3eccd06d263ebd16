// Package graphiql serves a GraphiQL IDE for the appliance's GraphQL API.
//
// Every script and stylesheet the page uses is compiled into the binary: the
// appliance has no internet access, so the usual CDN-hosted GraphiQL page
// would render blank. The vendored files in assets/ come from
// fetch-assets.sh, which pins their versions.
package graphiql

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed assets/*
var vendored embed.FS

// app.js sits outside assets/ because fetch-assets.sh replaces that
// directory wholesale; it is still served under <mount>/assets/.
//
//go:embed app.js
var appJS []byte

//go:embed index.html
var indexSource string

var indexTemplate = template.Must(template.New("index.html").Parse(indexSource))

// pageCSP lets the page load nothing but its own origin's files, so a token
// kept in localStorage can only be read by code this binary shipped.
// The page's script lives in app.js so script-src needs no 'unsafe-inline';
// GraphiQL 3 needs no eval. style-src keeps 'unsafe-inline' for the page's
// own <style> block; font-src allows data: because
// graphiql.min.css inlines its fonts as data: URLs, which default-src 'self'
// would block. frame-ancestors stops the login form being framed for
// clickjacking.
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// assetCacheControl lets browsers skip re-downloading ~1.5 MB of scripts on
// every visit; the page adds a content hash to each asset URL, so an upgraded
// binary's assets are fetched afresh regardless.
const assetCacheControl = "public, max-age=86400"

type asset struct {
	body        []byte
	contentType string
	etag        string
	version     string // short content hash, used to bust caches
}

// assets is built once because the embedded files never change at run time.
var assets = loadAssets()

func loadAssets() map[string]asset {
	m := make(map[string]asset)
	add := func(name string, body []byte) {
		if _, dup := m[name]; dup {
			panic("graphiql: duplicate asset " + name)
		}
		sum := sha256.Sum256(body)
		h := hex.EncodeToString(sum[:])
		m[name] = asset{
			body:        body,
			contentType: contentType(name),
			etag:        `"` + h[:32] + `"`,
			version:     h[:12],
		}
	}
	entries, err := fs.ReadDir(vendored, "assets")
	if err != nil {
		panic("graphiql: " + err.Error())
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		body, err := fs.ReadFile(vendored, "assets/"+e.Name())
		if err != nil {
			panic("graphiql: " + err.Error())
		}
		add(e.Name(), body)
	}
	add("app.js", appJS)
	return m
}

// contentType is fixed here rather than taken from mime.TypeByExtension,
// whose answer for .js depends on the host's /etc/mime.types; with nosniff a
// wrong type would make the browser refuse the script.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	default: // LICENSE.* files
		return "text/plain; charset=utf-8"
	}
}

type pageData struct {
	Endpoint  string
	LoginPath string
	mount     string
}

// Asset is called by index.html; failing on an unknown name turns a typo in
// the template into a panic when the handler is built, not a broken page.
func (d pageData) Asset(name string) (string, error) {
	a, ok := assets[name]
	if !ok {
		return "", fmt.Errorf("graphiql: no embedded asset %q", name)
	}
	return d.mount + "/assets/" + name + "?v=" + a.version, nil
}

type handler struct {
	mount string
	page  []byte
}

// Handler returns the GraphiQL UI for mounting at mount. Register it at
// mount+"/" so it also receives the asset paths beneath it (http.ServeMux
// then redirects a bare mount there); asset URLs in the page are absolute,
// so the page also works when served at mount itself.
//
// GraphiQL POSTs queries to endpoint with the bearer token kept in
// localStorage under "piot.token"; the page's login form obtains that token
// by POSTing {"email","password"} to loginPath. Both are paths on the same
// origin: the page's CSP forbids connecting anywhere else.
func Handler(mount, endpoint, loginPath string) http.Handler {
	mount = strings.TrimRight(mount, "/")
	var buf bytes.Buffer
	data := pageData{Endpoint: endpoint, LoginPath: loginPath, mount: mount}
	if err := indexTemplate.Execute(&buf, data); err != nil {
		panic(err)
	}
	return &handler{mount: mount, page: buf.Bytes()}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	var a asset
	var isPage bool
	switch {
	case p == h.mount || p == h.mount+"/":
		isPage = true
	case strings.HasPrefix(p, h.mount+"/assets/"):
		var ok bool
		a, ok = assets[strings.TrimPrefix(p, h.mount+"/assets/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
	default:
		http.NotFound(w, r)
		return
	}

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}

	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	if isPage {
		hdr.Set("Content-Type", "text/html; charset=utf-8")
		hdr.Set("Content-Security-Policy", pageCSP)
		// The page embeds the current binary's asset hashes; revalidating it
		// is what makes an upgrade pick up the new assets.
		hdr.Set("Cache-Control", "no-cache")
		hdr.Set("Referrer-Policy", "no-referrer")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(h.page))
		return
	}
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("Cache-Control", assetCacheControl)
	hdr.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
