package exporter

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var bundleFiles = []string{
	"provisioning/",
	"provisioning/alerting/",
	"provisioning/alerting/piot.yaml",
	"provisioning/dashboards/",
	"provisioning/dashboards/piot/",
	"provisioning/dashboards/piot/appliance.json",
	"provisioning/dashboards/piot/things.json",
	"provisioning/dashboards/piot.yaml",
	"provisioning/datasources/",
	"provisioning/datasources/piot.yaml",
}

// getBundle downloads the bundle and returns its files by name.
func getBundle(t *testing.T) (map[string][]byte, []string) {
	t.Helper()
	w := httptest.NewRecorder()
	GrafanaBundle().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/grafana.tar.gz", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/gzip" {
		t.Errorf("content type %q", ct)
	}
	if cd := w.Header().Get("Content-Disposition"); !strings.Contains(cd, BundleName) {
		t.Errorf("content disposition %q", cd)
	}
	gz, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	var order []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(bundleTime) || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d", h.Name, h.ModTime, h.Uid, h.Gid)
		}
		if (h.Typeflag == tar.TypeDir && h.Mode != 0o755) || (h.Typeflag == tar.TypeReg && h.Mode != 0o644) {
			t.Errorf("%s: mode %o", h.Name, h.Mode)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
		order = append(order, h.Name)
	}
	return files, order
}

func TestGrafanaBundle(t *testing.T) {
	files, order := getBundle(t)
	if !slices.Equal(order, bundleFiles) {
		t.Fatalf("files:\n got  %q\n want %q", order, bundleFiles)
	}
	for name, b := range files {
		switch {
		case strings.HasSuffix(name, ".json"):
			var v map[string]any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case strings.HasSuffix(name, ".yaml"):
			var v map[string]any
			if err := yaml.Unmarshal(b, &v); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if v["apiVersion"] != 1 {
				t.Errorf("%s: apiVersion %v", name, v["apiVersion"])
			}
		}
	}

	// Deterministic bytes; conditional and HEAD requests; GET only.
	again, err := buildBundle(grafanaFiles)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := bundle()
	if !bytes.Equal(first, again) {
		t.Error("the bundle differs between builds")
	}
	w := httptest.NewRecorder()
	GrafanaBundle().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/grafana.tar.gz", nil))
	etag := w.Header().Get("ETag")
	r := httptest.NewRequest(http.MethodGet, "/grafana.tar.gz", nil)
	r.Header.Set("If-None-Match", etag)
	w = httptest.NewRecorder()
	GrafanaBundle().ServeHTTP(w, r)
	if etag == "" || w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match %q: %d", etag, w.Code)
	}
	w = httptest.NewRecorder()
	GrafanaBundle().ServeHTTP(w, httptest.NewRequest(http.MethodHead, "/grafana.tar.gz", nil))
	if w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Errorf("HEAD: %d, %d bytes", w.Code, w.Body.Len())
	}
	w = httptest.NewRecorder()
	GrafanaBundle().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/grafana.tar.gz", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}
}

// dashboard is the part of a Grafana dashboard the tests look at.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	Panels     []panel         `json:"panels"`
	Targets    []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// metricName finds metric names in PromQL: identifiers of the exporter's
// families (and client_golang's go_ and process_).
var metricName = regexp.MustCompile(`\b(?:piot|go|process)_[a-zA-Z0-9_]+`)

// TestGrafanaQueriesNameExportedMetrics checks that every query of the
// dashboards and the alert rule names only metrics the exporter emits, and
// that the pieces refer to each other (datasource uid, contact point).
func TestGrafanaQueriesNameExportedMetrics(t *testing.T) {
	f := newFixture(t)
	_, _, body := scrape(t, newExporter(t, fakeSources(f.core)).Handler(BearerAuthorizer(globalToken, nil)), globalToken)
	emitted := parse(t, body)

	files, _ := getBundle(t)
	check := func(where, expr string) {
		t.Helper()
		ms := metricName.FindAllString(expr, -1)
		if len(ms) == 0 {
			t.Errorf("%s: %q names no metric", where, expr)
		}
		for _, m := range ms {
			if emitted[m] == nil {
				t.Errorf("%s: %q names %s, which the exporter does not emit", where, expr, m)
			}
		}
	}

	dashboards := map[string]dashboard{}
	for _, name := range []string{"appliance.json", "things.json"} {
		var d dashboard
		if err := json.Unmarshal(files["provisioning/dashboards/piot/"+name], &d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		dashboards[d.UID] = d
		ids := map[int]bool{}
		queries := 0
		var walk func(ps []panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				if ids[p.ID] {
					t.Errorf("%s: panel id %d twice", name, p.ID)
				}
				ids[p.ID] = true
				walk(p.Panels)
				if p.Type == "row" {
					continue
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: panel %q has no query", name, p.Title)
				}
				if !strings.Contains(string(p.Datasource), `"${datasource}"`) {
					t.Errorf("%s: panel %q datasource %s", name, p.Title, p.Datasource)
				}
				for _, tg := range p.Targets {
					check(name+": "+p.Title, tg.Expr)
					queries++
				}
			}
		}
		walk(d.Panels)
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			q, _ := v.Query.(map[string]any)
			s, _ := q["query"].(string)
			check(name+": variable "+v.Name, s)
		}
		if queries < 5 {
			t.Errorf("%s: only %d queries", name, queries)
		}
	}
	if d, ok := dashboards["piot-appliance"]; !ok || d.Title == "" {
		t.Error("no appliance dashboard")
	}
	things, ok := dashboards["piot-things"]
	if !ok {
		t.Fatal("no things dashboard")
	}
	var vars []string
	for _, v := range things.Templating.List {
		vars = append(vars, v.Name)
	}
	if !slices.Contains(vars, "org") {
		t.Errorf("things dashboard variables %q lack org", vars)
	}

	// The datasource the dashboards default to is the provisioned one.
	var ds struct {
		Datasources []struct {
			UID, Type, URL string
		}
	}
	if err := yaml.Unmarshal(files["provisioning/datasources/piot.yaml"], &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds.Datasources) != 1 || ds.Datasources[0].UID != "piot-prometheus" || ds.Datasources[0].Type != "prometheus" ||
		ds.Datasources[0].URL != "${PIOT_PROMETHEUS_URL}" {
		t.Errorf("datasource %+v", ds.Datasources)
	}
	for _, name := range []string{"appliance.json", "things.json"} {
		if !bytes.Contains(files["provisioning/dashboards/piot/"+name], []byte(`"value": "piot-prometheus"`)) {
			t.Errorf("%s does not default to the provisioned datasource", name)
		}
	}

	// The alert rule, its contact point and the route between them.
	var al struct {
		Groups []struct {
			Rules []struct {
				UID, Title, Condition string
				Data                  []struct {
					RefID         string         `yaml:"refId"`
					DatasourceUID string         `yaml:"datasourceUid"`
					Model         map[string]any `yaml:"model"`
				}
				Labels      map[string]string
				Annotations map[string]string
			}
		}
		ContactPoints []struct {
			Name      string
			Receivers []struct {
				Type     string
				Settings map[string]string
			}
		} `yaml:"contactPoints"`
		Policies []struct {
			Routes []struct {
				Receiver       string
				ObjectMatchers [][]string `yaml:"object_matchers"`
			}
		}
	}
	if err := yaml.Unmarshal(files["provisioning/alerting/piot.yaml"], &al); err != nil {
		t.Fatal(err)
	}
	if len(al.Groups) != 1 || len(al.Groups[0].Rules) != 1 {
		t.Fatalf("alert groups %+v", al.Groups)
	}
	rule := al.Groups[0].Rules[0]
	if rule.Title != "thing not seen" || rule.Condition != "C" || len(rule.Data) != 3 {
		t.Errorf("rule %+v", rule)
	}
	expr, _ := rule.Data[0].Model["expr"].(string)
	if rule.Data[0].DatasourceUID != "piot-prometheus" || !strings.HasPrefix(expr, "time() - piot_thing_last_seen_timestamp_seconds") {
		t.Errorf("rule query %+v", rule.Data[0])
	}
	check("alert rule", expr)
	for k, v := range rule.Annotations {
		if strings.Contains(v, "$") {
			t.Errorf("annotation %s has a $ Grafana would take for an environment variable: %q", k, v)
		}
	}
	if len(al.ContactPoints) != 1 || len(al.ContactPoints[0].Receivers) != 1 {
		t.Fatalf("contact points %+v", al.ContactPoints)
	}
	cp := al.ContactPoints[0]
	s := cp.Receivers[0].Settings
	if cp.Receivers[0].Type != "webhook" || s["url"] != "${PIOT_URL}/alerts/grafana" ||
		s["authorization_scheme"] != "Bearer" || s["authorization_credentials"] != "${PIOT_ALERT_TOKEN}" {
		t.Errorf("contact point %+v", cp)
	}
	routed := false
	for _, p := range al.Policies {
		for _, r := range p.Routes {
			for _, m := range r.ObjectMatchers {
				if r.Receiver == cp.Name && len(m) == 3 && rule.Labels[m[0]] == m[2] && m[1] == "=" {
					routed = true
				}
			}
		}
	}
	if !routed {
		t.Errorf("no route sends the rule (labels %v) to %q: %+v", rule.Labels, cp.Name, al.Policies)
	}
}
