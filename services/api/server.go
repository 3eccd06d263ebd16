// Package api serves the appliance's HTTP API: login and token refresh,
// optional self-registration, the GraphQL endpoint, GraphiQL and the health
// endpoints. It is a thin shell over services/core, which makes every
// authorization decision.
package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/piot-appliance/piot/internal/httpx"
	"github.com/piot-appliance/piot/internal/ratelimit"
	"github.com/piot-appliance/piot/services/api/graphiql"
	"github.com/piot-appliance/piot/services/core"
)

// Limits, documented in the README.
const (
	// MaxBodyBytes bounds every request body; larger bodies get 413.
	MaxBodyBytes = 1 << 20
	// maxHeaderBytes bounds request headers.
	maxHeaderBytes = 64 << 10
)

// Config configures the HTTP listener.
type Config struct {
	Addr string
	// HTTPSAddr, when set, serves the same routes over TLS with TLS.
	HTTPSAddr string
	TLS       *tls.Config
	// Tokens signs and checks session tokens; nil builds one from JWTKey
	// and JWTTTL. The composition root hands the same one to the web
	// manager.
	Tokens            *Tokens
	JWTKey            []byte
	JWTTTL            time.Duration
	AllowRegistration bool
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client; from any other peer the header is ignored.
	TrustedProxies []netip.Prefix
	// CORSOrigins may call the API from a browser page of another origin
	// (e.g. the original manager's development server); empty allows the
	// appliance's own pages only.
	CORSOrigins []string
	// MaxQueries bounds the GraphQL operations that run at once (0:
	// DefaultMaxQueries) and MaxQueriesPerCaller those of one user or,
	// for anonymous requests, one address (0: DefaultMaxQueriesPerKey).
	// A request over the caller's share gets 429; one that finds no free
	// slot within QueryWait (0: DefaultQueryWait) gets 503; both carry
	// Retry-After.
	MaxQueries          int
	MaxQueriesPerCaller int
	QueryWait           time.Duration
	// QueryTimeout stops a GraphQL operation that runs longer (0:
	// DefaultQueryTimeout); what did not finish is answered with
	// extensions.code TIMEOUT.
	QueryTimeout time.Duration
	// LoginPerMinute and LoginBurst limit login attempts per source
	// address: registrations all, logins the failed ones (LoginGuard; nil
	// builds one from these, the composition root shares its own with the
	// web manager).
	LoginPerMinute int
	LoginBurst     int
	LoginGuard     *LoginGuard
	Version        string
	Logger         *slog.Logger
	Now            func() time.Time
}

// Deps are the services the API fronts.
type Deps struct {
	Core *core.Core
	// GraphQL serves /query; the caller is in the request context.
	GraphQL http.Handler
	// Ready reports whether the appliance is ready (store reachable, all
	// services started).
	Ready func(context.Context) error
	// Notice, when set and not empty, is said beside readiness: a
	// system running again after its update was rolled back says so.
	Notice func() string
	// Extra routes mounted by other services (metrics, adapters, ...).
	Routes map[string]http.Handler
	// Streamed routes read their own bodies, larger than MaxBodyBytes and
	// as they arrive (an update bundle); they bound and time out reading
	// themselves.
	Streamed map[string]http.Handler
	// Root serves "/" and every path nothing else claims (the web
	// manager); nil serves a small landing page.
	Root http.Handler
}

// Server is the HTTP service.
type Server struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	tokens *Tokens
	// logins limits registrations per address; failed logins are the
	// guard's.
	logins  *ratelimit.Buckets
	guard   *LoginGuard
	addrs   ClientAddr
	queries *inflight
	srv     *http.Server
	ln      net.Listener
	tlsLn   net.Listener
	errc    chan error
}

// New builds the server; Start listens.
func New(cfg Config, deps Deps) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tokens == nil {
		t, err := NewTokens(cfg.JWTKey, cfg.JWTTTL, cfg.Now)
		if err != nil {
			return nil, err
		}
		cfg.Tokens = t
	}
	if cfg.LoginGuard == nil {
		cfg.LoginGuard = NewLoginGuard(cfg.LoginPerMinute, cfg.LoginBurst, cfg.Now)
	}
	if cfg.LoginPerMinute <= 0 {
		cfg.LoginPerMinute = 10
	}
	if cfg.LoginBurst <= 0 {
		cfg.LoginBurst = 5
	}
	if cfg.MaxQueries <= 0 {
		cfg.MaxQueries = DefaultMaxQueries
	}
	if cfg.MaxQueriesPerCaller <= 0 {
		cfg.MaxQueriesPerCaller = DefaultMaxQueriesPerKey
	}
	if cfg.QueryWait <= 0 {
		cfg.QueryWait = DefaultQueryWait
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = DefaultQueryTimeout
	}
	loginLimit := ratelimit.BucketsConfig{Rate: ratelimit.PerMinute(cfg.LoginPerMinute), Burst: cfg.LoginBurst, MaxKeys: 10000, Now: cfg.Now}
	s := &Server{
		cfg:     cfg,
		deps:    deps,
		log:     cfg.Logger,
		tokens:  cfg.Tokens,
		logins:  ratelimit.NewBuckets(loginLimit),
		guard:   cfg.LoginGuard,
		addrs:   ClientAddr{Trusted: cfg.TrustedProxies},
		queries: newInflight(cfg.MaxQueries, cfg.MaxQueriesPerCaller, cfg.QueryWait),
		errc:    make(chan error, 1),
	}
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Name implements the supervisor's service interface.
func (s *Server) Name() string { return "http" }

// Start binds the listener (so a busy port fails start-up) and serves in
// the background.
func (s *Server) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("http: listen %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	s.log.Info("http listening", "addr", ln.Addr().String())
	if s.cfg.HTTPSAddr != "" {
		if s.cfg.TLS == nil {
			ln.Close()
			return errors.New("https: no TLS configuration")
		}
		tln, err := net.Listen("tcp", s.cfg.HTTPSAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("https: listen %s: %w", s.cfg.HTTPSAddr, err)
		}
		s.tlsLn = tln
		s.log.Info("https listening", "addr", tln.Addr().String())
		go s.serve(tls.NewListener(tln, s.cfg.TLS), "https")
	}
	go s.serve(ln, "http")
	return nil
}

func (s *Server) serve(ln net.Listener, name string) {
	if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		select {
		case s.errc <- fmt.Errorf("%s: %w", name, err):
		default:
		}
	}
}

// HTTPSAddr is the bound HTTPS address, "" without HTTPS.
func (s *Server) HTTPSAddr() string {
	if s.tlsLn == nil {
		return ""
	}
	return s.tlsLn.Addr().String()
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Err reports a failure while serving.
func (s *Server) Err() <-chan error { return s.errc }

// Stop drains connections until ctx expires.
func (s *Server) Stop(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("http: shutdown: %w", err)
	}
	return nil
}

// Handler is the complete route table.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", s.healthz)
	mux.HandleFunc("/readyz", s.readyz)
	mux.Handle("/gql/", graphiql.Handler("/gql", "/query", "/login"))
	api := http.NewServeMux()
	api.HandleFunc("/login", s.login)
	api.HandleFunc("/refresh", s.refresh)
	api.HandleFunc("/register", s.register)
	api.Handle("/query", s.authenticate(s.graphql()))
	mux.Handle("/login", api)
	mux.Handle("/refresh", api)
	mux.Handle("/register", api)
	mux.Handle("/query", api)
	// The original manager talks to /api/ behind a reverse proxy.
	mux.Handle("/api/", http.StripPrefix("/api", api))
	for p, h := range s.deps.Routes {
		mux.Handle(p, h)
	}
	if s.deps.Root != nil {
		mux.Handle("/", s.deps.Root)
	} else {
		mux.HandleFunc("/", s.root)
	}
	limited := s.recoverer(s.cors(limitBody(mux)))
	if len(s.deps.Streamed) == 0 {
		return limited
	}
	outer := http.NewServeMux()
	for p, h := range s.deps.Streamed {
		outer.Handle(p, s.recoverer(h))
	}
	outer.Handle("/", limited)
	return outer
}

// cors answers preflights and marks answers for the configured origins
// only; for any other origin the browser's same-origin rule stands.
func (s *Server) cors(h http.Handler) http.Handler {
	allowed := map[string]bool{}
	for _, o := range s.cfg.CORSOrigins {
		allowed[strings.TrimRight(o, "/")] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !allowed[origin] {
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				writeError(w, http.StatusForbidden, core.CodeForbidden, "origin not allowed (--cors-origins)")
				return
			}
			h.ServeHTTP(w, r)
			return
		}
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", origin)
		hd.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			hd.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			hd.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// recoverer turns a panic into a 500 instead of a dropped connection.
func (s *Server) recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in HTTP handler", "path", r.URL.Path, "panic", v)
				writeError(w, http.StatusInternalServerError, core.CodeInternal, "internal error")
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// limitBody reads at most MaxBodyBytes+1 of the body up front so oversize
// requests get a clear 413 before any handler decodes them.
func limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBodyBytes {
			writeError(w, http.StatusRequestEntityTooLarge, core.CodeBadInput, fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
			if err != nil {
				writeError(w, http.StatusBadRequest, core.CodeBadInput, "cannot read request body")
				return
			}
			if len(body) > MaxBodyBytes {
				writeError(w, http.StatusRequestEntityTooLarge, core.CodeBadInput, fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, r)
	})
}

// writeJSON answers with v, which no cache keeps: answers carry tokens and
// account data.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, status, v)
}

// writeError answers a failure in the original envelope ({"error",
// "result"}) with the machine-readable code added.
func writeError(w http.ResponseWriter, status int, code core.Code, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteError(w, status, code, msg)
}

// writeGraphQLError answers /query failures that happen before GraphQL
// runs in the GraphQL response shape, so clients parse one format.
func writeGraphQLError(w http.ResponseWriter, status int, code core.Code, msg string) {
	writeJSON(w, status, map[string]any{
		"errors": []map[string]any{{"message": msg, "extensions": map[string]any{"code": code}}},
		"data":   nil,
	})
}

func statusOf(code core.Code) int {
	switch code {
	case core.CodeUnauthenticated:
		return http.StatusUnauthorized
	case core.CodeForbidden:
		return http.StatusForbidden
	case core.CodeNotFound:
		return http.StatusNotFound
	case core.CodeBadInput:
		return http.StatusBadRequest
	case core.CodeConflict:
		return http.StatusConflict
	case core.CodeRateLimited:
		return http.StatusTooManyRequests
	case core.CodeUnavailable:
		return http.StatusServiceUnavailable
	case core.CodeStorageFull:
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if s.deps.Ready != nil {
		if err := s.deps.Ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
	}
	ans := map[string]string{"status": "ready"}
	if s.deps.Notice != nil {
		if n := s.deps.Notice(); n != "" {
			ans["notice"] = n
		}
	}
	writeJSON(w, http.StatusOK, ans)
}

var rootPage = template.Must(template.New("root").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>PIOT appliance</title></head>
<body><h1>PIOT appliance</h1><p>Version: {{.}}</p>
<ul><li><a href="/gql/">GraphiQL</a></li><li><a href="/healthz">health</a></li><li><a href="/readyz">readiness</a></li></ul>
</body></html>`))

func (s *Server) root(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		writeError(w, http.StatusNotFound, core.CodeNotFound, "no such path")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, core.CodeBadInput, "only GET method is allowed")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = rootPage.Execute(w, s.cfg.Version)
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// decodeJSON decodes a request body strictly: one object, no trailing data.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed JSON body: %w", err)
	}
	if dec.More() {
		return errors.New("malformed JSON body: trailing data")
	}
	return nil
}

func requirePOST(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, core.CodeBadInput, "only POST method is allowed")
		return false
	}
	return true
}

// source is where an API request comes from, for core's audit trail.
// The client's word is enough: the source only says which tool the
// authenticated actor used.
func (s *Server) source(r *http.Request) core.Source {
	via := core.ViaAPI
	if r.Header.Get("User-Agent") == core.CLIUserAgent {
		via = core.ViaCLI
	}
	return core.Source{Via: via, Addr: s.clientAddr(r)}
}

// clientAddr is the client's address (ClientAddr).
func (s *Server) clientAddr(r *http.Request) string { return s.addrs.Of(r) }

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !requirePOST(w, r) {
		return
	}
	addr := s.clientAddr(r)
	var c credentials
	if err := decodeJSON(r, &c); err != nil {
		writeError(w, http.StatusBadRequest, core.CodeBadInput, err.Error())
		return
	}
	if ok, wait := s.guard.Check(addr, c.Email); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		writeError(w, http.StatusTooManyRequests, core.CodeRateLimited, "too many failed login attempts, try again later")
		return
	}
	actor, err := s.deps.Core.Login(r.Context(), c.Email, c.Password)
	if err != nil {
		s.guard.Failed(addr, c.Email)
		s.log.Info("login failed", "remote", addr)
		writeError(w, http.StatusUnauthorized, core.CodeUnauthenticated, core.Message(err))
		return
	}
	s.sendToken(w, actor)
}

func (s *Server) sendToken(w http.ResponseWriter, a core.Actor) {
	tok, err := s.tokens.Issue(a)
	if err != nil {
		s.log.Error("cannot sign token", "err", err)
		writeError(w, http.StatusInternalServerError, core.CodeInternal, "error while encrypting token, try again")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": tok.Value, "expires_at": tok.Expires.Unix()})
}

// refresh trades a valid token for a fresh one, so clients need not keep
// the password around.
func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	if !requirePOST(w, r) {
		return
	}
	a, err := s.actorOf(r)
	if err != nil {
		writeError(w, http.StatusUnauthorized, core.CodeUnauthenticated, err.Error())
		return
	}
	s.sendToken(w, a)
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.AllowRegistration {
		writeError(w, http.StatusNotFound, core.CodeNotFound, "registration is disabled on this appliance")
		return
	}
	if !requirePOST(w, r) {
		return
	}
	if ok, wait := s.logins.Allow(s.clientAddr(r)); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		writeError(w, http.StatusTooManyRequests, core.CodeRateLimited, "too many attempts, try again later")
		return
	}
	var c credentials
	if err := decodeJSON(r, &c); err != nil {
		writeError(w, http.StatusBadRequest, core.CodeBadInput, err.Error())
		return
	}
	if _, err := s.deps.Core.Register(core.WithSource(r.Context(), s.source(r)), c.Email, c.Password); err != nil {
		code := core.CodeOf(err)
		if code == core.CodeInternal {
			s.log.Error("registration failed", "err", err)
		}
		writeError(w, statusOf(code), code, core.Message(err))
		return
	}
	writeJSON(w, http.StatusOK, httpx.CodedAnswer{Result: "Registration successful"})
}

// actorOf authenticates a request by its bearer token. The web
// manager's session cookie is not accepted here: /query stays
// bearer-only, so a page of another site can never make a browser spend
// the cookie on the API.
func (s *Server) actorOf(r *http.Request) (core.Actor, error) {
	tok, ok := httpx.BearerToken(r)
	if !ok {
		return core.Anonymous(), errors.New("invalid or missing authorization header")
	}
	a, _, err := s.tokens.Actor(s.deps.Core, tok)
	return a, err
}

// authenticate puts the caller into the request context; GraphQL requires
// a valid token, as in the original server.
func (s *Server) authenticate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := s.actorOf(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="piot"`)
			writeGraphQLError(w, http.StatusUnauthorized, core.CodeUnauthenticated, err.Error())
			return
		}
		ctx := core.WithSource(core.WithActor(r.Context(), a), s.source(r))
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (s *Server) graphql() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeGraphQLError(w, http.StatusMethodNotAllowed, core.CodeBadInput, "only POST method is allowed")
			return
		}
		ct := r.Header.Get("Content-Type")
		if ct != "" && !strings.HasPrefix(ct, "application/json") {
			writeGraphQLError(w, http.StatusUnsupportedMediaType, core.CodeBadInput, "Content-Type must be application/json")
			return
		}
		if ct == "" {
			r.Header.Set("Content-Type", "application/json")
		}
		// Decode once here so malformed JSON gets a plain 400 with a code.
		body, _ := io.ReadAll(r.Body)
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(body, &probe); err != nil {
			writeGraphQLError(w, http.StatusBadRequest, core.CodeBadInput, "malformed JSON body")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		key := s.clientAddr(r)
		if a := core.ActorFrom(r.Context()); a.Authenticated() {
			key = a.UserID.Hex()
		}
		release, err := s.queries.acquire(r.Context(), key)
		switch {
		case errors.Is(err, errTooMany):
			w.Header().Set("Retry-After", "1")
			writeGraphQLError(w, http.StatusTooManyRequests, core.CodeRateLimited, err.Error())
			return
		case errors.Is(err, errBusy):
			w.Header().Set("Retry-After", "1")
			writeGraphQLError(w, http.StatusServiceUnavailable, core.CodeUnavailable, err.Error())
			return
		case err != nil:
			return // the client went away while waiting
		}
		defer release()
		ctx, cancel := context.WithTimeoutCause(r.Context(), s.cfg.QueryTimeout, core.ErrDeadline)
		defer cancel()
		s.deps.GraphQL.ServeHTTP(w, r.WithContext(ctx))
	})
}
