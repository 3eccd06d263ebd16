package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/piot-appliance/piot/services/api"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
	"github.com/piot-appliance/piot/services/monitor"
)

// Config tunes the web manager.
type Config struct {
	Version string
	Logger  *slog.Logger
	// KeepAlive is how often an idle event stream sends a comment and
	// re-checks its session (0: 25 s).
	KeepAlive time.Duration
}

// Deps are what the pages stand on. Tokens and Guard are the API's own,
// built once by the composition root, so a session cookie is the same
// token an API client gets and failed sign-ins count with failed API
// logins.
type Deps struct {
	Core       *core.Core
	Tokens     *api.Tokens
	Guard      *api.LoginGuard
	ClientAddr api.ClientAddr
	// CSRFKey binds form tokens to sessions (at least 32 bytes, secret,
	// kept in the data directory so forms survive a restart).
	CSRFKey []byte
	// Appliance is what the onboarding and status pages show of the
	// running appliance (system.go).
	Appliance Appliance
	// WebhookTest sends a test request to an org's webhook (the monitor's
	// TestWebhook, which asks core who may); nil: the page offers none.
	WebhookTest func(ctx context.Context, a core.Actor, org core.ID) error
	// History answers the things' history charts; nil: none kept.
	History *history.Store
	// Monitor lists and acknowledges alarms; nil: no monitor runs.
	Monitor *monitor.Monitor
}

// Server is the web manager: an http.Handler for "/" and its pages.
type Server struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	pages  pages
	assets *assets
	mux    *http.ServeMux
	// streams counts the open event streams per user.
	streams streams
}

// New parses the templates and hashes the assets once.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Core == nil || deps.Tokens == nil || deps.Guard == nil {
		return nil, errors.New("web: core, tokens and login guard are required")
	}
	if len(deps.CSRFKey) < 32 {
		return nil, errors.New("web: CSRF key must have at least 32 bytes")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 25 * time.Second
	}
	as, err := loadAssets()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, deps: deps, log: cfg.Logger, assets: as, mux: http.NewServeMux()}
	if s.pages, err = parsePages(as); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// routes is the web manager's whole route table. s.page wraps what needs
// a signed-in user (and checks CSRF on every POST); the API's paths
// (/login, /query, …) never reach this mux, api.Server claims them first.
func (s *Server) routes() {
	m := s.mux
	m.Handle("GET /static/{file}", s.assets)
	m.HandleFunc("GET /signin", s.signinForm)
	m.HandleFunc("POST /signin", s.signin)
	m.Handle("POST /logout", s.page(s.logout))
	m.Handle("GET /{$}", s.page(s.home))
	m.Handle("POST /org/active", s.page(s.switchOrg))
	m.Handle("GET /events", s.page(s.events))
	m.Handle("GET /things", s.page(s.thingList))
	m.Handle("GET /things/all", s.page(s.thingListAll))
	m.Handle("GET /things/{id}", s.page(s.thingPage))
	m.Handle("GET /things/{id}/history", s.page(s.thingHistory))
	m.Handle("POST /things/{id}/assign", s.page(s.thingAssign))
	m.Handle("POST /things/{id}/switch/set", s.page(s.thingSwitch))
	m.Handle("POST /things/{id}/delete", s.page(s.thingDelete))
	m.Handle("POST /things/{id}/{section}", s.page(s.thingSave))
	m.Handle("GET /map", s.page(s.thingMap))
	m.Handle("GET /alarms", s.page(s.alarmList))
	m.Handle("POST /alarms/{id}/ack", s.page(s.alarmAck))

	m.Handle("GET /orgs", s.page(s.orgList))
	m.Handle("GET /orgs/new", s.page(s.orgNew))
	m.Handle("POST /orgs", s.page(s.orgCreate))
	m.Handle("GET /orgs/{id}", s.page(s.orgEdit))
	m.Handle("POST /orgs/{id}", s.page(s.orgUpdate))
	m.Handle("POST /orgs/{id}/mqtt", s.page(s.orgMQTT))
	m.Handle("GET /orgs/{id}/delete", s.page(s.orgDeleteForm))
	m.Handle("POST /orgs/{id}/delete", s.page(s.orgDelete))
	m.Handle("POST /orgs/{id}/members", s.page(s.orgAddMember))
	m.Handle("POST /orgs/{id}/members/{user}/delete", s.page(s.orgRemoveMember))

	m.Handle("GET /users", s.page(s.userList))
	m.Handle("GET /users/new", s.page(s.userNew))
	m.Handle("POST /users", s.page(s.userCreate))
	m.Handle("GET /users/{id}", s.page(s.userEdit))
	m.Handle("POST /users/{id}", s.page(s.userUpdate))
	m.Handle("GET /users/{id}/delete", s.page(s.userDeleteForm))
	m.Handle("POST /users/{id}/delete", s.page(s.userDelete))
	m.Handle("POST /users/{id}/orgs", s.page(s.userAddOrg))

	// Device onboarding, metrics tokens, webhooks, the appliance's status
	// (onboarding.go, tokens.go, webhooks.go, status.go).
	m.Handle("GET /onboarding", s.page(s.onboarding))
	m.Handle("GET /tokens", s.page(s.tokenList))
	m.Handle("POST /tokens", s.page(s.tokenCreate))
	m.Handle("POST /tokens/revoke", s.page(s.tokenRevoke))
	m.Handle("GET /webhooks", s.page(s.webhookList))
	m.Handle("GET /webhooks/{org}", s.page(s.webhookForm))
	m.Handle("POST /webhooks/{org}", s.page(s.webhookSave))
	m.Handle("POST /webhooks/{org}/delete", s.page(s.webhookDelete))
	m.Handle("POST /webhooks/{org}/test", s.page(s.webhookTest))
	m.Handle("GET /status", s.page(s.status))

	m.HandleFunc("/", s.notFound)
}

// ServeHTTP sets the headers every answer of the manager carries, then
// routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	s.mux.ServeHTTP(w, r)
}

// contentSecurityPolicy allows only the appliance's own files: no inline
// script or style, no other origin, no framing. A template that needs an
// inline handler is wrong, not this policy.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
