// Package appliance is the composition root: it turns a Config into the
// running set of services, in dependency order (store → core → http).
package appliance

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/piot-appliance/piot/appliance/config"
	"github.com/piot-appliance/piot/appliance/osctl"
	"github.com/piot-appliance/piot/appliance/supervisor"
	"github.com/piot-appliance/piot/services/adapter"
	"github.com/piot-appliance/piot/services/adapter/relay"
	"github.com/piot-appliance/piot/services/adapter/vdgps"
	"github.com/piot-appliance/piot/services/api"
	"github.com/piot-appliance/piot/services/api/graph"
	"github.com/piot-appliance/piot/services/broker"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
	"github.com/piot-appliance/piot/services/ingest"
	"github.com/piot-appliance/piot/services/store"
	"github.com/piot-appliance/piot/tui"
	consoledeps "github.com/piot-appliance/piot/tui/backend"
	"github.com/piot-appliance/piot/tui/sshserver"
)

// Appliance is everything `piot run` runs.
type Appliance struct {
	cfg     config.Config
	log     *slog.Logger
	version string
	sup     *supervisor.Supervisor

	store   *storeService
	core    *coreService
	monitor *monitorService
	ingest  *ingestService
	broker  *brokerService
	ssh     *sshService
	http    *httpService
	start   time.Time

	// For the console: the state of the services and the recent log.
	health *consoledeps.Tracker
	logs   *consoledeps.LogRing
}

// New wires the services; nothing starts until Run.
func New(cfg config.Config, log *slog.Logger, version string) (*Appliance, error) {
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	// The console's System screen shows the recent log, at info level
	// whatever the process logs.
	logs := consoledeps.NewLogRing(consoledeps.DefaultLogLines, slog.LevelInfo)
	log = slog.New(consoledeps.Tee(log.Handler(), logs))
	a := &Appliance{cfg: cfg, log: log, version: version, start: time.Now(),
		health: consoledeps.NewTracker(), logs: logs}
	a.store = &storeService{cfg: cfg, log: log}
	a.core = &coreService{cfg: cfg, log: log, store: a.store}
	a.monitor = &monitorService{app: a}
	a.ingest = &ingestService{app: a}
	a.broker = &brokerService{app: a}
	a.ssh = &sshService{app: a}
	a.http = &httpService{app: a}
	track := a.health.Track
	services := []supervisor.Service{
		track(a.store, a.store.probe), track(a.core, a.core.probe),
		track(a.monitor, a.monitor.probe),
		track(a.ingest, a.ingest.probe), track(a.broker, a.broker.probe),
	}
	if cfg.SSHAddr != "" {
		services = append(services, track(a.ssh, a.ssh.probe))
	}
	services = append(services, track(a.http, a.http.probe))
	a.sup = supervisor.New(log, cfg.ShutdownTimeout, services...)
	return a, nil
}

// Run runs until ctx is cancelled or a service fails.
func (a *Appliance) Run(ctx context.Context) error { return a.sup.Run(ctx) }

// HTTPAddr is the bound HTTP address once running.
func (a *Appliance) HTTPAddr() string {
	if a.http.srv == nil {
		return ""
	}
	return a.http.srv.Addr()
}

// ReloadTLS re-reads the MQTT TLS certificate (SIGHUP).
func (a *Appliance) ReloadTLS() error {
	if a.broker.b == nil {
		return errors.New("broker not running")
	}
	return a.broker.b.ReloadTLS()
}

// MQTTAddrs are the bound MQTT listener addresses by kind (tcp, tls, ws).
func (a *Appliance) MQTTAddrs() map[string]string {
	if a.broker.b == nil {
		return nil
	}
	return a.broker.b.Addrs()
}

// ready is /readyz: every service started and the store answering.
func (a *Appliance) ready(ctx context.Context) error {
	if err := a.sup.Ready(); err != nil {
		return err
	}
	if a.store.st == nil {
		return errors.New("store not open")
	}
	if err := a.store.st.Ping(ctx); err != nil {
		return errors.New("store not reachable")
	}
	if a.ingest.ing != nil {
		// A full disk: what arrives is refused until writing works again.
		if err := a.ingest.ing.Health(); err != nil {
			return err
		}
	}
	return nil
}

// storeHealthInterval is how often the store is pinged for the broker's
// fail-closed check, which must be cheap because it runs on every ACL check.
const storeHealthInterval = 2 * time.Second

type storeService struct {
	cfg     config.Config
	log     *slog.Logger
	st      *store.Store
	healthy atomic.Bool
	stop    context.CancelFunc
	done    chan struct{}
}

func (s *storeService) Name() string { return "store" }

func (s *storeService) Start(ctx context.Context) error {
	st, err := store.Open(ctx, store.Config{
		DataDir: s.cfg.DataDir, URI: s.cfg.StoreURI,
		ConnectTimeout: s.cfg.StoreTimeout, Logger: s.log,
	})
	if err != nil {
		return err
	}
	s.st = st
	if err := s.applyPendingRestore(ctx); err != nil {
		_ = st.Close(ctx)
		return err
	}
	s.healthy.Store(true)
	hctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go s.watchHealth(hctx)
	mode := "embedded FerretDB (SQLite)"
	if !st.Embedded() {
		mode = "external"
	}
	s.log.Info("store open", "mode", mode)
	return nil
}

// watchHealth keeps healthy current so that readers never wait on the
// database.
func (s *storeService) watchHealth(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(storeHealthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			err := s.st.Ping(pctx)
			cancel()
			if ok := err == nil; ok != s.healthy.Swap(ok) {
				if ok {
					s.log.Info("store reachable again")
				} else {
					s.log.Error("store not reachable; MQTT access is denied until it is back", "err", err)
				}
			}
		}
	}
}

// probe is the store's line on the console dashboard.
func (s *storeService) probe() (bool, string) {
	mode := "embedded"
	if !s.st.Embedded() {
		mode = "external"
	}
	if !s.healthy.Load() {
		return false, mode + ", not reachable"
	}
	return true, mode + ", reachable"
}

func (s *storeService) Stop(ctx context.Context) error {
	s.stop()
	<-s.done
	return s.st.Close(ctx)
}

// ingestService turns MQTT traffic into thing state and history. It
// starts before the broker so the journal is replayed before any client
// can publish, and stops after it so everything acknowledged is applied.
type ingestService struct {
	app  *Appliance
	hist *history.Store
	ing  *ingest.Ingest
}

func (s *ingestService) Name() string { return "ingest" }

func (s *ingestService) Start(ctx context.Context) error {
	a := s.app
	h, err := history.New(a.store.st, history.Config{
		Retention: a.cfg.HistoryRetention, MaxBytes: int64(a.cfg.HistoryMaxBytes), Logger: a.log,
	})
	if err != nil {
		return err
	}
	ing, err := ingest.New(ingest.Config{
		DataDir: a.cfg.DataDir, FlushInterval: a.cfg.IngestFlushInterval, Logger: a.log,
	}, ingest.Deps{Core: a.core.c, History: h})
	if err != nil {
		return err
	}
	if err := ing.Start(ctx); err != nil {
		return err
	}
	s.hist, s.ing = h, ing
	return nil
}

func (s *ingestService) Stop(ctx context.Context) error { return s.ing.Stop(ctx) }

func (s *ingestService) probe() (bool, string) {
	if !s.ing.Running() {
		return false, "not running"
	}
	return true, fmt.Sprintf("running, journal %d pending", s.ing.JournalDepth())
}

type brokerService struct {
	app *Appliance
	b   *broker.Broker
	// The device adapters: served on the HTTP listener, and fed packets
	// relayed by edge adapters through the relay hook.
	piot  *adapter.Adapter
	vd    *vdgps.Handler
	relay *relay.Hook
}

func (s *brokerService) Name() string { return "broker" }

func (s *brokerService) Start(ctx context.Context) error {
	a := s.app
	c := a.cfg
	b, err := broker.New(broker.Config{
		DataDir: c.DataDir, MQTTAddr: c.MQTTAddr, MQTTSAddr: c.MQTTSAddr, WSAddr: c.MQTTWSAddr,
		TLSCertFile: c.TLSCert, TLSKeyFile: c.TLSKey, TLSNames: c.TLSNames,
		MonitorPassword: c.MQTTMonitorPassword,
		MaxPacketSize:   c.MQTTMaxPacketSize, MaxClients: c.MQTTMaxClients, MaxInflight: c.MQTTMaxInflight,
		MaxQueuedBytes: c.MQTTMaxQueuedBytes,
		MaxRetained:    c.MQTTMaxRetained, MaxKeepalive: uint16(c.MQTTMaxKeepalive), StrictKeepalive: c.MQTTStrictKeepalive, SessionExpiry: c.MQTTSessionExpiry,
		Logger: a.log,
	}, broker.Deps{Core: a.core.c, StoreHealthy: a.store.healthy.Load})
	if err != nil {
		return err
	}
	if err := s.newAdapters(); err != nil {
		return err
	}
	// The relay processes edge adapters' packets before the ingest sees
	// any publish.
	if err := b.AddHook(s.relay, nil); err != nil {
		return err
	}
	if err := b.AddHook(a.ingest.ing.Hook(), nil); err != nil {
		return err
	}
	s.b = b
	if err := b.Start(ctx); err != nil {
		s.relay.Close()
		return err
	}
	a.core.c.SetCommandPublisher(b.Publish)
	a.ingest.ing.SetDeliverer(b.PublishIngested)
	return nil
}

func (s *brokerService) Err() <-chan error { return s.b.Err() }

func (s *brokerService) probe() (bool, string) {
	addrs := s.b.Addrs()
	if !s.b.Running() || len(addrs) == 0 {
		return false, "not listening"
	}
	var l []string
	for _, k := range []string{broker.ListenerTCP, broker.ListenerTLS, broker.ListenerWS} {
		if addr, ok := addrs[k]; ok {
			l = append(l, k+" "+addr)
		}
	}
	return true, "listening on " + strings.Join(l, ", ")
}

func (s *brokerService) Stop(ctx context.Context) error {
	s.app.core.c.SetCommandPublisher(nil)
	s.app.ingest.ing.SetDeliverer(nil)
	err := s.b.Stop(ctx)
	return errors.Join(err, s.relay.Close())
}

type coreService struct {
	cfg   config.Config
	log   *slog.Logger
	store *storeService
	c     *core.Core
}

func (s *coreService) Name() string { return "core" }

func (s *coreService) Start(ctx context.Context) error {
	c, err := core.New(ctx, s.store.st, core.Config{BcryptCost: s.cfg.BcryptCost, Logger: s.log})
	if err != nil {
		return err
	}
	s.c = c
	return provisionAdmin(ctx, c, s.cfg.DataDir, s.cfg.AdminEmail, s.cfg.AdminPassword, s.log)
}

func (s *coreService) Stop(context.Context) error { return nil }

func (s *coreService) probe() (bool, string) {
	st := s.c.Stats()
	return true, fmt.Sprintf("%d users, %d orgs, %d things", st.Users, st.Orgs, st.Things)
}

// sshService is the console over SSH.
type sshService struct {
	app     *Appliance
	srv     *sshserver.Server
	metrics *consoledeps.Metrics
}

func (s *sshService) Name() string { return "ssh" }

func (s *sshService) Start(ctx context.Context) error {
	a := s.app
	var srv *sshserver.Server // set before any session can ask for the listeners
	metrics := consoledeps.NewMetrics(a.broker.b, a.ingest.ing, 0)
	deps := tui.Deps{
		Core: a.core.c, Version: a.version, Started: a.start, DataDir: a.cfg.DataDir,
		Metrics: metrics,
		Health:  a.health,
		Live:    consoledeps.NewLive(a.core.c, a.broker.b, 0, 0),
		History: consoledeps.NewHistory(a.core.c, a.ingest.hist, nil),
		Alarms:  consoledeps.NewAlarms(a.monitor.m),
		System: consoledeps.NewSystem(consoledeps.SystemConfig{
			DataDir: a.cfg.DataDir, Version: a.version, Core: a.core.c,
			TLS: a.broker.b, Logs: a.logs, Logger: a.log, OS: osctl.FromEnv(),
			Listeners: func() []tui.Listener { return a.listeners(srv) },
		}),
	}
	srv, err := sshserver.New(sshserver.Config{
		Addr: a.cfg.SSHAddr, DataDir: a.cfg.DataDir,
		IdleTimeout: a.cfg.SSHIdleTimeout, MaxTimeout: a.cfg.SSHMaxTimeout,
		PasswordAuth: a.cfg.SSHPasswordAuth, Version: a.version, Logger: a.log,
	}, deps)
	if err != nil {
		return err
	}
	metrics.Start()
	if err := srv.Start(ctx); err != nil {
		metrics.Stop()
		return err
	}
	s.srv, s.metrics = srv, metrics
	return nil
}

func (s *sshService) probe() (bool, string) { return true, "listening on " + s.srv.Addr() }

// listeners are the appliance's endpoints for the console's System
// screen; the HTTP server starts after the console, so it is read only
// once the tracker says it runs.
func (a *Appliance) listeners(ssh *sshserver.Server) []tui.Listener {
	var out []tui.Listener
	if a.health.Running("http") {
		out = append(out, tui.Listener{Name: "http", Addr: a.http.srv.Addr()})
		if addr := a.http.srv.HTTPSAddr(); addr != "" {
			out = append(out, tui.Listener{Name: "https", Addr: addr, TLS: true})
		}
	}
	if b := a.broker.b; b != nil {
		out = append(out, consoledeps.BrokerListeners(b.Addrs(), b.ServerCertificate())...)
	}
	if ssh != nil {
		out = append(out, consoledeps.SSHListener(ssh.Addr(), ssh.HostKey()))
	}
	return out
}

func (s *sshService) Err() <-chan error { return s.srv.Err() }

func (s *sshService) Stop(ctx context.Context) error {
	defer s.metrics.Stop()
	return s.srv.Stop(ctx)
}

// SSHAddr is the bound console address once running.
func (a *Appliance) SSHAddr() string {
	if a.ssh.srv == nil {
		return ""
	}
	return a.ssh.srv.Addr()
}

type httpService struct {
	app *Appliance
	srv *api.Server
	// vd serves legacy VD GPS trackers that post to any path.
	vd *http.Server
}

func (s *httpService) Name() string { return "http" }

func (s *httpService) Start(ctx context.Context) error {
	a := s.app
	key := []byte(a.cfg.JWTKey)
	if len(key) == 0 {
		k, err := loadOrCreateSecret(a.cfg.DataDir, jwtKeyFile, 32)
		if err != nil {
			return fmt.Errorf("JWT key: %w", err)
		}
		key = k
	}
	gql := graph.NewHandler(a.core.c, graph.Options{
		History:  a.ingest.hist,
		Monitor:  a.monitor.m,
		MaxDepth: a.cfg.GraphQLMaxDepth, MaxComplexity: a.cfg.GraphQLMaxCost, MaxRows: a.cfg.GraphQLMaxRows,
		Logger: a.log,
	})
	metricsToken, err := a.secretOrFile(a.cfg.MetricsToken, metricsTokenFile)
	if err != nil {
		return fmt.Errorf("metrics token: %w", err)
	}
	alertToken, err := a.secretOrFile(a.cfg.AlertToken, alertTokenFile)
	if err != nil {
		return fmt.Errorf("alert token: %w", err)
	}
	routes, err := a.metricsRoutes(metricsToken, alertToken)
	if err != nil {
		return err
	}
	routes["/ca.crt"] = caHandler(a.broker.b.CACertPEM)
	proxies, err := a.cfg.TrustedProxyPrefixes()
	if err != nil {
		return err
	}
	srv, err := api.New(api.Config{
		Addr: a.cfg.HTTPAddr, HTTPSAddr: a.cfg.HTTPSAddr, TLS: a.broker.b.TLSConfig(),
		JWTKey: key, JWTTTL: a.cfg.JWTTTL,
		AllowRegistration: a.cfg.AllowRegistration, TrustedProxies: proxies, CORSOrigins: a.cfg.CORSOrigins,
		LoginPerMinute: a.cfg.LoginRate, LoginBurst: a.cfg.LoginBurst,
		MaxQueries: a.cfg.APIMaxQueries, MaxQueriesPerCaller: a.cfg.APIMaxPerCaller, QueryTimeout: a.cfg.APIQueryTimeout,
		Version: a.version, Logger: a.log,
	}, api.Deps{Core: a.core.c, GraphQL: gql, Ready: a.ready, Routes: routes})
	if err != nil {
		return err
	}
	if a.cfg.AdapterVDGPSAddr != "" {
		ln, err := net.Listen("tcp", a.cfg.AdapterVDGPSAddr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", a.cfg.AdapterVDGPSAddr, err)
		}
		s.vd = &http.Server{Handler: a.broker.vd, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
			ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelDebug)}
		go func() {
			if err := s.vd.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("VD GPS listener failed", "err", err)
			}
		}()
	}
	s.srv = srv
	if err := srv.Start(ctx); err != nil {
		if s.vd != nil {
			s.vd.Close()
		}
		return err
	}
	return nil
}

func (s *httpService) Err() <-chan error { return s.srv.Err() }

func (s *httpService) Stop(ctx context.Context) error {
	var err error
	if s.vd != nil {
		err = s.vd.Shutdown(ctx)
	}
	return errors.Join(err, s.srv.Stop(ctx))
}

func (s *httpService) probe() (bool, string) { return true, "listening on " + s.srv.Addr() }

// NewLogger builds the process logger from the configuration.
func NewLogger(cfg config.Config, w interface{ Write([]byte) (int, error) }) *slog.Logger {
	return NewLoggerFor(cfg.LogLevel, cfg.LogFormat, w)
}

// NewLoggerFor builds a logger of a (validated) level and format.
func NewLoggerFor(level, format string, w interface{ Write([]byte) (int, error) }) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// caHandler serves the appliance CA so devices can pin it; it is public
// by nature.
func caHandler(pem func() []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "only GET method is allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Content-Disposition", `attachment; filename="piot-ca.crt"`)
		_, _ = w.Write(pem())
	})
}

// applyPendingRestore replaces the store's contents with a backup the
// console scheduled, before core or anything else loads them.
func (s *storeService) applyPendingRestore(ctx context.Context) error {
	path := filepath.Join(s.cfg.DataDir, consoledeps.RestorePendingFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pending restore: %w", err)
	}
	defer f.Close()
	n, err := s.st.Restore(ctx, f, consoledeps.BackupFormat)
	if err != nil {
		return fmt.Errorf("pending restore %s failed (remove the file to start without it): %w", path, err)
	}
	done := filepath.Join(s.cfg.DataDir, "restore-done-"+time.Now().UTC().Format("20060102T150405Z")+".jsonl")
	if err := os.Rename(path, done); err != nil {
		return fmt.Errorf("pending restore: %w", err)
	}
	s.log.Warn("store restored from the scheduled backup", "documents", n, "kept_as", done)
	return nil
}
