// Package sshserver serves the appliance console over SSH: public-key
// logins of the users core knows (and of <data-dir>/authorized_keys), one
// Bubble Tea program per session, the backup commands (commands.go) and
// nothing else — no shell, no other commands, no subsystems, no
// forwarding.
package sshserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"charm.land/ssh"
	"charm.land/wish/v2"
	"github.com/piot-appliance/piot/internal/ratelimit"
	"github.com/piot-appliance/piot/tui"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/time/rate"
)

// Defaults for the zero values of Config.
const (
	DefaultAddr        = ":2222"
	DefaultIdleTimeout = 15 * time.Minute
	DefaultMaxTimeout  = 12 * time.Hour
	DefaultConnRate    = 0.5 // new connections per second and address
	DefaultConnBurst   = 10
	DefaultMaxConns    = 32
	// handshakeTimeout bounds the time from connecting to being logged
	// in; a person with a key needs well under a second.
	handshakeTimeout = 10 * time.Second
	// MaxPreAuthPerAddr bounds an address's connections that have not
	// logged in yet, so that idle connections from a few addresses
	// cannot fill every slot and lock the admins out.
	MaxPreAuthPerAddr = 4
	maxAuthTries      = 6
)

// Config is the SSH server's part of the appliance configuration.
type Config struct {
	// Addr to listen on; "127.0.0.1:0" picks a free port (see Addr()).
	Addr string
	// DataDir holds ssh_host_ed25519_key (generated at first start, 0600)
	// and, optionally, authorized_keys (OpenSSH format) whose keys log in
	// as the first admin.
	DataDir string
	// IdleTimeout closes a session without keyboard input for this long;
	// MaxTimeout closes any connection after this long. Negative disables.
	IdleTimeout time.Duration
	MaxTimeout  time.Duration
	// PasswordAuth allows admins to log in with their email and password
	// (rate-limited per address). Off by default.
	PasswordAuth bool
	Version      string
	Logger       *slog.Logger

	// ConnRate and ConnBurst limit new connections per source address;
	// MaxConns bounds concurrent connections. Zero means the default.
	ConnRate  float64
	ConnBurst int
	MaxConns  int
}

// Deps are the console's collaborators; Core is required.
type Deps = tui.Deps

// Server is the console's SSH server, a supervised service.
type Server struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	srv    *ssh.Server
	signer gossh.Signer

	connLimit *ratelimit.Buckets
	preAuth   preAuthSlots
	pwLimit   *ratelimit.Buckets
	conns     atomic.Int64

	mu      sync.Mutex
	ln      net.Listener
	started bool
	stopped bool
	errc    chan error
	served  chan struct{}
}

// New prepares the server: it loads or generates the host key but does not
// listen yet.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Core == nil {
		return nil, errors.New("sshserver: no core")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("sshserver: no data directory")
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxTimeout == 0 {
		cfg.MaxTimeout = DefaultMaxTimeout
	}
	if cfg.ConnRate <= 0 {
		cfg.ConnRate = DefaultConnRate
	}
	if cfg.ConnBurst <= 0 {
		cfg.ConnBurst = DefaultConnBurst
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if deps.DataDir == "" {
		deps.DataDir = cfg.DataDir
	}
	if deps.Version == "" {
		deps.Version = cfg.Version
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("sshserver: %w", err)
	}
	signer, err := loadOrCreateHostKey(cfg.DataDir, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("sshserver: host key: %w", err)
	}
	s := &Server{
		cfg:       cfg,
		deps:      deps,
		log:       cfg.Logger.With("service", "ssh"),
		signer:    signer,
		connLimit: newAddrLimit(rate.Limit(cfg.ConnRate), cfg.ConnBurst),
		pwLimit:   newAddrLimit(rate.Every(10*time.Second), 5),
		errc:      make(chan error, 1),
		served:    make(chan struct{}),
	}
	if s.srv, err = s.newSSHServer(); err != nil {
		return nil, fmt.Errorf("sshserver: %w", err)
	}
	return s, nil
}

func (s *Server) newSSHServer() (*ssh.Server, error) {
	opts := []ssh.Option{
		// The host key first: without one wish would generate a key file
		// in the working directory.
		func(srv *ssh.Server) error { srv.AddHostKey(s.signer); return nil },
		wish.WithPublicKeyAuth(s.publicKeyHandler),
		// The console is the only handler; nothing runs after it.
		wish.WithMiddleware(func(ssh.Handler) ssh.Handler { return s.handle }),
	}
	if s.cfg.PasswordAuth {
		opts = append(opts, wish.WithPasswordAuth(s.passwordHandler))
	}
	if s.cfg.Version != "" {
		opts = append(opts, wish.WithVersion("PIOT_"+sanitizeVersion(s.cfg.Version)))
	}
	if s.cfg.IdleTimeout > 0 {
		// A backstop for connections that never open a session; sessions
		// have their own keyboard-based idle timer (the console's redraws
		// would keep this one alive), which ends them first and politely.
		opts = append(opts, wish.WithIdleTimeout(s.cfg.IdleTimeout+30*time.Second))
	}
	if s.cfg.MaxTimeout > 0 {
		// The session ends itself at MaxTimeout with a message; the
		// connection deadline a little later is the hard stop.
		opts = append(opts, wish.WithMaxTimeout(s.cfg.MaxTimeout+10*time.Second))
	}
	srv, err := wish.NewServer(opts...)
	if err != nil {
		return nil, err
	}
	// Interactive shells and the backup commands only: other exec and
	// subsystem requests are refused before any handler runs.
	srv.SessionRequestCallback = func(sess ssh.Session, requestType string) bool {
		return requestType == "shell" || requestType == "exec" && isCommand(sess.RawCommand())
	}
	srv.PtyCallback = func(_ ssh.Context, p ssh.Pty) bool { return validWindow(p.Window) }
	srv.ConnCallback = s.admit
	srv.ConnectionCloseCallback = func(net.Conn) { s.conns.Add(-1) }
	srv.ConnectionFailedCallback = func(c net.Conn, err error) {
		s.log.Info("ssh connection failed", "remote", c.RemoteAddr().String(), "err", err)
	}
	srv.ServerConfigCallback = func(ssh.Context) *gossh.ServerConfig {
		return &gossh.ServerConfig{MaxAuthTries: maxAuthTries}
	}
	srv.HandshakeTimeout = handshakeTimeout
	// Only "session" channels; no port forwarding (direct-tcpip), no
	// global requests (tcpip-forward), no subsystems (sftp).
	srv.ChannelHandlers = map[string]ssh.ChannelHandler{"session": ssh.DefaultSessionHandler}
	srv.RequestHandlers = map[string]ssh.RequestHandler{}
	srv.SubsystemHandlers = map[string]ssh.SubsystemHandler{}
	srv.LocalPortForwardingCallback = nil
	srv.ReversePortForwardingCallback = nil
	return srv, nil
}

// sanitizeVersion keeps the SSH identification string valid (RFC 4253:
// printable US-ASCII, no spaces).
func sanitizeVersion(v string) string {
	b := []byte(v)
	for i, c := range b {
		if c <= ' ' || c > '~' || c == '-' {
			b[i] = '_'
		}
	}
	return string(b)
}

// Name implements the supervisor's Service.
func (s *Server) Name() string { return "ssh" }

// Start binds the address and serves in the background.
func (s *Server) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("sshserver: already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("sshserver: %w", err)
	}
	s.ln, s.started = ln, true
	s.log.Info("ssh console listening", "addr", ln.Addr().String(), "host_key", gossh.FingerprintSHA256(s.signer.PublicKey()), "password_auth", s.cfg.PasswordAuth)
	go func() {
		defer close(s.served)
		err := s.srv.Serve(ln)
		s.mu.Lock()
		stopped := s.stopped
		s.mu.Unlock()
		if err != nil && !errors.Is(err, ssh.ErrServerClosed) && !stopped {
			s.errc <- fmt.Errorf("sshserver: %w", err)
		}
	}()
	return nil
}

// Stop closes the listener and ends the sessions: gracefully within ctx,
// then by force.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	if !s.started || s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.mu.Unlock()
	// Console sessions last until the user quits; waiting for them would
	// only delay the shutdown, so they are closed at once.
	err := s.srv.Close()
	select {
	case <-s.served:
	case <-ctx.Done():
		return fmt.Errorf("sshserver: stop: %w", ctx.Err())
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("sshserver: stop: %w", err)
	}
	return nil
}

// Err reports a failure of the running server.
func (s *Server) Err() <-chan error { return s.errc }

// Addr is the bound address once started, else the configured one.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.cfg.Addr
}

// HostKey is the server's public host key, for known_hosts and the System
// screen.
func (s *Server) HostKey() gossh.PublicKey { return s.signer.PublicKey() }

// admit applies the per-address connection rate, the per-address cap on
// connections not yet logged in and the connection cap before the SSH
// handshake; a nil result closes the connection.
func (s *Server) admit(ctx ssh.Context, c net.Conn) net.Conn {
	host := hostOf(c.RemoteAddr())
	if ok, _ := s.connLimit.Allow(host); !ok {
		s.log.Warn("ssh connection rate limited", "remote", host)
		return nil
	}
	if !s.preAuth.take(host) {
		s.log.Warn("ssh connection refused: too many connections not logged in from this address", "remote", host, "limit", MaxPreAuthPerAddr)
		return nil
	}
	var once sync.Once
	release := func() { once.Do(func() { s.preAuth.give(host) }) }
	if s.conns.Add(1) > int64(s.cfg.MaxConns) {
		s.conns.Add(-1)
		release()
		s.log.Warn("ssh connection refused: too many connections", "remote", host)
		return nil
	}
	// The slot is given back when a session starts (logged in) or when
	// the connection ends, whichever is first.
	ctx.SetValue(ctxKeyPreAuthRelease, release)
	go func() {
		<-ctx.Done()
		release()
	}()
	return c
}

type ctxKey string

const ctxKeyPreAuthRelease ctxKey = "piot-preauth-release"

// loggedIn gives back the connection's pre-authentication slot.
func loggedIn(ctx ssh.Context) {
	if release, ok := ctx.Value(ctxKeyPreAuthRelease).(func()); ok {
		release()
	}
}

// maxLimitedAddrs bounds the tables of the per-address limits.
const maxLimitedAddrs = 4096

// newAddrLimit is a token bucket per source address. A table full of busy
// addresses refuses newcomers rather than forget (and so reset) the
// limits of the busy ones.
func newAddrLimit(limit rate.Limit, burst int) *ratelimit.Buckets {
	return ratelimit.NewBuckets(ratelimit.BucketsConfig{Rate: limit, Burst: burst, MaxKeys: maxLimitedAddrs, WhenFull: ratelimit.Refuse})
}

// preAuthSlots counts connections per address that have not logged in.
type preAuthSlots struct {
	mu     sync.Mutex
	byHost map[string]int
}

func (p *preAuthSlots) take(host string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byHost == nil {
		p.byHost = map[string]int{}
	}
	if p.byHost[host] >= MaxPreAuthPerAddr {
		return false
	}
	p.byHost[host]++
	return true
}

func (p *preAuthSlots) give(host string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byHost[host]--; p.byHost[host] <= 0 {
		delete(p.byHost, host)
	}
}

func hostOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

// maxWindow bounds terminal sizes so a client cannot make the renderer
// allocate huge screens.
const (
	maxCols = 1000
	maxRows = 500
)

func validWindow(w ssh.Window) bool {
	return w.Width >= 0 && w.Height >= 0 && w.Width <= maxCols && w.Height <= maxRows
}

// clampWindow gives unknown sizes the classic 80×24 and caps large ones.
func clampWindow(w ssh.Window) (int, int) {
	cols, rows := w.Width, w.Height
	if cols <= 0 {
		cols = 80
	}
	if rows <= 0 {
		rows = 24
	}
	return min(cols, maxCols), min(rows, maxRows)
}
