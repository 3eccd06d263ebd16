package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/piot-appliance/piot/services/api"
	"github.com/piot-appliance/piot/services/core"
)

// cookieName holds the session: the same signed token the API hands out
// at /login. No __Host- prefix, because that needs Secure, and the
// appliance also serves plain HTTP on a local network.
const cookieName = "piot_session"

// session is a signed-in request: who, the token's claims (for signing
// out) and the form token bound to it.
type session struct {
	actor  core.Actor
	claims *api.Claims
	csrf   string
}

// errNoSession is why a request without a usable cookie is sent to the
// sign-in page.
var errNoSession = errors.New("not signed in")

// sessionOf resolves the cookie through the API's tokens and core, which
// refuse expired, revoked and stale tokens alike.
func (s *Server) sessionOf(r *http.Request) (*session, error) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil, errNoSession
	}
	a, claims, err := s.deps.Tokens.Actor(s.deps.Core, c.Value)
	if err != nil {
		return nil, err
	}
	if claims.ID == "" {
		// Only tokens with an id can be signed out; the web issues no other.
		return nil, errNoSession
	}
	return &session{actor: a, claims: claims, csrf: s.csrfToken(claims.ID)}, nil
}

// csrfToken binds a form token to one session: an HMAC of the token's id
// with a key only the appliance knows. A page of another site can neither
// read it (same-origin rule) nor compute it.
func (s *Server) csrfToken(jti string) string {
	m := hmac.New(sha256.New, s.deps.CSRFKey)
	m.Write([]byte("piot-web-csrf\x00" + jti))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// page wraps every handler that needs a signed-in user. Anything but
// GET and HEAD must come from the appliance's own pages (Origin/Referer,
// when the browser sends them) and carry the session's form token; no
// handler can forget the check.
func (s *Server) page(h func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.sessionOf(r)
		if err != nil {
			s.signedOut(w, r, err)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !sameOrigin(r) {
				s.refuse(w, r, sess, http.StatusForbidden, "This request did not come from the appliance's own pages and was refused.")
				return
			}
			tok := r.Header.Get("X-CSRF-Token")
			if tok == "" {
				tok = r.PostFormValue("csrf")
			}
			if !hmac.Equal([]byte(tok), []byte(sess.csrf)) {
				s.refuse(w, r, sess, http.StatusForbidden, "The form's security token is missing or does not belong to this session. Reload the page and try again.")
				return
			}
		}
		src := core.Source{Via: core.ViaWeb, Addr: s.deps.ClientAddr.Of(r)}
		h(w, r.WithContext(core.WithSource(r.Context(), src)), sess)
	})
}

// signedOut answers a request without a valid session: pages go to the
// sign-in form (and come back after it), anything else gets 401. A
// cookie that no longer works is removed.
func (s *Server) signedOut(w http.ResponseWriter, r *http.Request, why error) {
	if _, err := r.Cookie(cookieName); err == nil {
		http.SetCookie(w, s.cookie(r, "", time.Unix(0, 0)))
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if r.Header.Get("Accept") == "text/event-stream" {
			http.Error(w, "not signed in", http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	msg := "You are not signed in."
	if !errors.Is(why, errNoSession) {
		msg = "Your session has ended (" + why.Error() + ")."
	}
	s.render(w, http.StatusUnauthorized, "signin", view{Title: "Sign in", Data: signinData{Error: msg + " Sign in again."}})
}

// cookie is the session cookie: HttpOnly (scripts never see the token),
// SameSite=Strict (no other site's page sends it), Secure when the
// request came over TLS, and living as long as its token.
func (s *Server) cookie(r *http.Request, value string, expires time.Time) *http.Cookie {
	c := &http.Cookie{
		Name: cookieName, Value: value, Path: "/",
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
		Expires: expires,
	}
	if value == "" {
		c.MaxAge = -1
	}
	return c
}

// sameOrigin refuses requests a browser says came from another origin.
// Browsers send Origin on every POST; without it and without a Referer
// (non-browser clients) the form token alone decides.
func sameOrigin(r *http.Request) bool {
	for _, h := range []string{"Origin", "Referer"} {
		v := r.Header.Get(h)
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || u.Host == "" {
			return false // including Origin: null (sandboxed frames, file: pages)
		}
		return strings.EqualFold(u.Host, r.Host)
	}
	return true
}

type signinData struct {
	Email, Next, Error string
}

func (s *Server) signinForm(w http.ResponseWriter, r *http.Request) {
	if _, err := s.sessionOf(r); err == nil {
		http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.render(w, http.StatusOK, "signin", view{Title: "Sign in", Data: signinData{Next: r.URL.Query().Get("next")}})
}

// signin checks the password through core, counting failures with the
// API's guard, and sets the session cookie. There is no session yet to
// bind a form token to, so the origin check is what stops another site
// from signing a browser in to an account of its choosing.
func (s *Server) signin(w http.ResponseWriter, r *http.Request) {
	email, password, next := r.PostFormValue("email"), r.PostFormValue("password"), r.PostFormValue("next")
	form := signinData{Email: email, Next: next}
	if !sameOrigin(r) {
		form.Error = "This sign-in did not come from the appliance's own page."
		s.render(w, http.StatusForbidden, "signin", view{Title: "Sign in", Data: form})
		return
	}
	addr := s.deps.ClientAddr.Of(r)
	if ok, wait := s.deps.Guard.Check(addr, email); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		form.Error = "Too many failed sign-ins. Wait a minute and try again."
		s.render(w, http.StatusTooManyRequests, "signin", view{Title: "Sign in", Data: form})
		return
	}
	a, err := s.deps.Core.Login(r.Context(), email, password)
	if err != nil {
		s.deps.Guard.Failed(addr, email)
		s.log.Info("web sign-in failed", "remote", addr)
		form.Error = core.Message(err)
		s.render(w, http.StatusUnauthorized, "signin", view{Title: "Sign in", Data: form})
		return
	}
	tok, err := s.deps.Tokens.Issue(a)
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	http.SetCookie(w, s.cookie(r, tok.Value, tok.Expires))
	http.Redirect(w, r, localPath(next), http.StatusSeeOther)
}

// localPath keeps a redirect target on this appliance: a path, never
// "//host" or "/\host", which browsers read as another site.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	return p
}

// logout revokes the session's token in core, so a copy of the cookie
// stops working too, and removes the cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request, sess *session) {
	if err := s.deps.Core.RevokeToken(r.Context(), sess.actor, sess.claims.ID, sess.claims.ExpiresAt.Time); err != nil {
		s.fail(w, r, sess, err)
		return
	}
	http.SetCookie(w, s.cookie(r, "", time.Unix(0, 0)))
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// switchOrg sets the active org with core's call, the one the API's
// switchOrg uses, so the console, the API and the pages agree.
func (s *Server) switchOrg(w http.ResponseWriter, r *http.Request, sess *session) {
	id, err := core.ParseID(r.PostFormValue("org"))
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	if _, err := s.deps.Core.SetActiveOrg(r.Context(), sess.actor, id); err != nil {
		s.fail(w, r, sess, err)
		return
	}
	http.Redirect(w, r, "/?done=org-switched", http.StatusSeeOther)
}
