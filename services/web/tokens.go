package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/piot-appliance/piot/services/core"
)

// tokensData is the metrics tokens page of one org.
type tokensData struct {
	Orgs   []core.Org
	Org    core.Org
	Tokens []core.MetricsToken
	// Created is the token just made, shown this once (never in a URL,
	// never again: the store keeps only its hash).
	Created *core.MetricsToken
	// MetricsURL is /metrics as the browser reached the appliance;
	// Target and Scheme are its parts for the scrape config.
	MetricsURL, Target, Scheme string
	// Snippet is the Prometheus scrape config for the org's token.
	Snippet string
}

// tokenOrg is the org a tokens request is about: the form's or query's
// "org", else the active org. Core decides whether the actor may see it.
func (s *Server) tokenOrg(r *http.Request, sess *session) (core.Org, error) {
	v := r.FormValue("org")
	id := s.deps.Core.ActiveOrg(sess.actor)
	if v != "" {
		var err error
		if id, err = core.ParseID(v); err != nil {
			return core.Org{}, err
		}
	}
	if id.IsZero() {
		orgs, err := s.deps.Core.Orgs(sess.actor)
		if err != nil || len(orgs) == 0 {
			return core.Org{}, err
		}
		return orgs[0], nil
	}
	return s.deps.Core.Org(sess.actor, id)
}

// tokenList lists an org's scrape tokens (admins only: core refuses the
// rest, also when they type the URL).
func (s *Server) tokenList(w http.ResponseWriter, r *http.Request, sess *session) {
	s.showTokens(w, r, sess, nil)
}

// tokenCreate makes a token and shows it once, in this answer.
func (s *Server) tokenCreate(w http.ResponseWriter, r *http.Request, sess *session) {
	o, err := s.tokenOrg(r, sess)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	mt, err := s.deps.Core.CreateMetricsToken(r.Context(), sess.actor, o.ID)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	s.showTokens(w, r, sess, &mt)
}

// tokenRevoke deletes a token; scrapes presenting it get 401 at once.
func (s *Server) tokenRevoke(w http.ResponseWriter, r *http.Request, sess *session) {
	o, err := s.tokenOrg(r, sess)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	if err := s.deps.Core.RevokeMetricsToken(r.Context(), sess.actor, o.ID, r.PostFormValue("id")); err != nil {
		s.fail(w, r, sess, err)
		return
	}
	http.Redirect(w, r, "/tokens?"+url.Values{"org": {o.ID.Hex()}, "done": {"token-revoked"}}.Encode(), http.StatusSeeOther)
}

func (s *Server) showTokens(w http.ResponseWriter, r *http.Request, sess *session, created *core.MetricsToken) {
	c := s.deps.Core
	o, err := s.tokenOrg(r, sess)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	d := tokensData{Org: o, Created: created, MetricsURL: baseURL(r) + "/metrics", Target: r.Host, Scheme: "http"}
	if r.TLS != nil {
		d.Scheme = "https"
	}
	if !o.ID.IsZero() {
		if d.Tokens, err = c.MetricsTokens(sess.actor, o.ID); err != nil {
			s.fail(w, r, sess, err)
			return
		}
		d.Snippet = scrapeConfig(o.Name, d.Scheme, d.Target)
	} else if _, err := c.StatsFor(sess.actor); err != nil {
		// No org to ask about: core still decides who sees this page.
		s.fail(w, r, sess, err)
		return
	}
	if d.Orgs, err = c.Orgs(sess.actor); err != nil {
		s.fail(w, r, sess, err)
		return
	}
	s.show(w, r, sess, http.StatusOK, "tokens", "Metrics tokens", "/tokens", d)
}

// scrapeConfig is the Prometheus scrape job for an org's token, kept in
// a file beside prometheus.yml (never in the config itself).
func scrapeConfig(org, scheme, target string) string {
	file := "/etc/prometheus/piot-" + safeFileName(org) + ".token"
	var b strings.Builder
	b.WriteString("scrape_configs:\n")
	b.WriteString("  - job_name: " + yamlString("piot-"+org) + "\n")
	b.WriteString("    scheme: " + scheme + "\n")
	b.WriteString("    metrics_path: /metrics\n")
	b.WriteString("    authorization:\n")
	b.WriteString("      type: Bearer\n")
	b.WriteString("      credentials_file: " + yamlString(file) + "\n")
	if scheme == "https" {
		b.WriteString("    tls_config:\n      ca_file: /etc/prometheus/piot-ca.crt\n")
	}
	b.WriteString("    static_configs:\n")
	b.WriteString("      - targets: [" + yamlString(target) + "]\n")
	return b.String()
}

// yamlString quotes s as a YAML double-quoted scalar.
func yamlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			b.WriteString("?")
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// safeFileName keeps letters, digits, '-', '_' and '.' of an org name.
func safeFileName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
