package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// pages are the parsed templates, one set per page: the layout plus the
// page's file, which defines "title" and "content".
type pages map[string]*template.Template

func parsePages(as *assets) (pages, error) {
	funcs := template.FuncMap{
		"asset": as.url,
		"time": func(unix int64) string {
			if unix == 0 {
				return "never"
			}
			return time.Unix(unix, 0).UTC().Format("2006-01-02 15:04 UTC")
		},
		"hex": func(id core.ID) string { return id.Hex() },
	}
	for name, fn := range thingFuncs() {
		funcs[name] = fn
	}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: parse layout: %w", err)
	}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: list templates: %w", err)
	}
	p := pages{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(files, n)
		if err != nil {
			return nil, fmt.Errorf("web: parse %s: %w", n, err)
		}
		p[name] = t
	}
	return p, nil
}

// view is what every page template gets: the layout's parts (who is
// signed in, the navigation, the org switcher, the form token) and the
// page's own Data.
type view struct {
	Title   string
	Version string
	// Signed is false on the sign-in and error pages of anonymous users;
	// the layout then shows no navigation.
	Signed bool
	Email  string
	// Self is the signed-in user's id, for the link to their own page.
	Self core.ID
	// Admin shows the admin-only navigation (Actor.IsAdministrator);
	// it decides nothing, core refuses what is not allowed.
	Admin     bool
	CSRF      string
	Orgs      []core.Org
	ActiveOrg core.ID
	// Nav is the path of the navigation item to mark as current.
	Nav string
	// Live asks the script to refresh the page's main part on server
	// events.
	Live   bool
	Notice string
	Data   any
}

// render executes a page into a buffer first, so a template error is a
// clean 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, status int, name string, v view) {
	t, ok := s.pages[name]
	if !ok {
		s.log.Error("web: no such page template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	v.Version = s.cfg.Version
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		s.log.Error("web: render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Pages show account data and carry form tokens: no cache keeps them.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// show renders a page of a signed-in user with the layout's parts filled.
func (s *Server) show(w http.ResponseWriter, r *http.Request, sess *session, status int, name, title, nav string, data any) {
	v := s.layout(sess)
	v.Title, v.Nav, v.Data = title, nav, data
	v.Live = livePage(name)
	v.Notice = notice(r.URL.Query().Get("done"))
	s.render(w, status, name, v)
}

// layout fills what every signed-in page shows: the org switcher lists
// the orgs core lets the user see, the active one as core says.
func (s *Server) layout(sess *session) view {
	v := view{Signed: true, Email: sess.actor.Email, Self: sess.actor.UserID, Admin: sess.actor.IsAdministrator(), CSRF: sess.csrf}
	if orgs, err := s.deps.Core.Orgs(sess.actor); err == nil {
		v.Orgs = orgs
	}
	v.ActiveOrg = s.deps.Core.ActiveOrg(sess.actor)
	return v
}

// notice is the message a redirect after a change names by a fixed code:
// the URL never carries text of its own to show, so a link cannot make
// the appliance display words of somebody else's choosing.
func notice(code string) string {
	switch code {
	case "signed-in":
		return "Signed in."
	case "org-switched":
		return "Active organization switched."
	case "org-created":
		return "Organization created."
	case "org-saved":
		return "Organization saved."
	case "org-deleted":
		return "Organization deleted."
	case "member-added":
		return "Member added."
	case "member-removed":
		return "Member removed."
	case "user-created":
		return "User created."
	case "user-saved":
		return "User saved."
	case "user-deleted":
		return "User deleted."
	case "token-revoked":
		return "Metrics token revoked: scrapes with it are refused from now on."
	case "webhook-saved":
		return "Webhook saved."
	case "webhook-deleted":
		return "Webhook removed."
	case "webhook-tested":
		return "The webhook accepted the test request."
	}
	return thingNotice(code)
}

// livePage says which pages refresh themselves on server events: lists
// and the overview, never forms, which a refresh would reset under the
// user's fingers.
func livePage(name string) bool {
	switch name {
	case "home", "orgs", "users", "things", "map", "alarms":
		return true
	}
	return false
}
