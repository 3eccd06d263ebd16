// Package appliance is the composition root: New builds the services of
// `piot run` from explicit values, in dependency order (store → core →
// history → ingest → broker → adapters → monitor → api, ssh), and Run
// hands them to the supervisor, which starts them in that order and stops
// them in reverse.
package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/piot-appliance/piot/appliance/config"
	"github.com/piot-appliance/piot/appliance/osctl"
	"github.com/piot-appliance/piot/appliance/supervisor"
	"github.com/piot-appliance/piot/appliance/update"
	"github.com/piot-appliance/piot/services/api"
	"github.com/piot-appliance/piot/services/api/graph"
	"github.com/piot-appliance/piot/services/broker"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
	"github.com/piot-appliance/piot/services/ingest"
	"github.com/piot-appliance/piot/services/monitor"
	"github.com/piot-appliance/piot/services/store"
	"github.com/piot-appliance/piot/services/web"
	"github.com/piot-appliance/piot/tui"
	"github.com/piot-appliance/piot/tui/backend"
	"github.com/piot-appliance/piot/tui/sshserver"
)

// Appliance is everything `piot run` runs.
type Appliance struct {
	sup    *supervisor.Supervisor
	broker *broker.Broker
	http   *api.Server
	ssh    *sshserver.Server // nil when the console is disabled
}

// New opens the store and builds every service; nothing listens until
// Run.
//
// The store is opened here, not in a supervised service's Start, because
// everything after it is built from what it holds (core loads users, orgs
// and things, the history its partitions), and a restore the console
// scheduled must replace its contents before core loads them. Opening it
// first lets every service below be built once, from values it is handed,
// instead of filling itself in from an earlier service's Start. If New
// fails it closes what it opened; otherwise Run closes everything.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, version string) (_ *Appliance, err error) {
	started := time.Now()
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	// The console's System screen shows the recent log, at info level
	// whatever the process logs.
	logs := backend.NewLogRing(backend.DefaultLogLines, slog.LevelInfo)
	log = slog.New(backend.Tee(log.Handler(), logs))

	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	st, err := openStore(ctx, cfg, version, log)
	if err != nil {
		return nil, supervisor.Named("store", err)
	}
	undo = append(undo, func() { _ = st.Close(context.Background()) })
	storeSvc := newStoreService(st, log)

	coreCfg := cfg.Core
	coreCfg.Logger = log
	c, err := core.New(ctx, st, coreCfg)
	if err != nil {
		return nil, supervisor.Named("core", err)
	}
	if err := provisionAdmin(ctx, c, cfg.DataDir, cfg.Admin.Email, cfg.Admin.Password, log); err != nil {
		return nil, supervisor.Named("core", err)
	}

	histCfg := cfg.History
	histCfg.Logger = log
	hist, err := history.New(st, histCfg)
	if err != nil {
		return nil, supervisor.Named("ingest", err)
	}
	ingCfg := cfg.Ingest
	ingCfg.DataDir, ingCfg.Logger = cfg.DataDir, log
	ing, err := ingest.New(ingCfg, ingest.Deps{Core: c, History: hist})
	if err != nil {
		return nil, supervisor.Named("ingest", err)
	}
	undo = append(undo, func() { _ = ing.Stop(context.Background()) })

	brokerCfg := cfg.Broker
	brokerCfg.DataDir, brokerCfg.Logger = cfg.DataDir, log
	b, err := broker.New(brokerCfg, broker.Deps{Core: c, StoreHealthy: storeSvc.healthy.Load})
	if err != nil {
		return nil, supervisor.Named("broker", err)
	}
	dev, err := newDevices(cfg.Adapter, c, ing, log)
	if err != nil {
		return nil, supervisor.Named("broker", err)
	}
	undo = append(undo, func() { _ = dev.relay.Close() })
	// The relay processes edge adapters' packets before the ingest sees
	// any publish.
	if err := b.AddHook(dev.relay, nil); err != nil {
		return nil, supervisor.Named("broker", err)
	}
	if err := b.AddHook(ing.Hook(), nil); err != nil {
		return nil, supervisor.Named("broker", err)
	}

	smtp, err := smtpConfig(cfg.Monitor.SMTP)
	if err != nil {
		return nil, supervisor.Named("monitor", err)
	}
	mon, err := monitor.New(monitor.Config{SMTP: smtp, WebhookTimeout: cfg.Monitor.NotifyTimeout, Logger: log},
		monitor.Deps{Core: c, Store: st})
	if err != nil {
		return nil, supervisor.Named("monitor", err)
	}

	// /readyz asks the supervisor, which exists only once every service
	// it supervises does; nothing serves /readyz before Run.
	var sup *supervisor.Supervisor
	ready := func(ctx context.Context) error { return readiness(ctx, sup, st, ing) }
	updates, err := newUpdates(cfg.Update, cfg.DataDir, version, log)
	if err != nil {
		return nil, supervisor.Named("http", err)
	}
	metrics, err := newExporter(cfg, c, st, hist, ing, b, dev, updates, version, log)
	if err != nil {
		return nil, supervisor.Named("http", err)
	}
	alertToken, err := secretOrFile(cfg.DataDir, cfg.Monitor.AlertToken, alertTokenFile)
	if err != nil {
		return nil, supervisor.Named("http", fmt.Errorf("alert token: %w", err))
	}
	jwtKey, err := loadJWTKey(cfg)
	if err != nil {
		return nil, supervisor.Named("http", err)
	}
	proxies, err := cfg.HTTP.TrustedProxyPrefixes()
	if err != nil {
		return nil, supervisor.Named("http", err)
	}
	gql := graph.NewHandler(c, graph.Options{
		History: hist, Monitor: mon, System: systemStatus(updates, version),
		MaxDepth: cfg.API.GraphQL.MaxDepth, MaxComplexity: cfg.API.GraphQL.MaxComplexity, MaxRows: cfg.API.GraphQL.MaxRows,
		Logger: log,
	})
	// One token issuer and one failed-login guard for the API and the
	// web manager: a session cookie is an API token, and a guesser gains
	// nothing by switching between /login and /signin.
	tokens, err := api.NewTokens(jwtKey, cfg.API.JWTTTL, nil)
	if err != nil {
		return nil, supervisor.Named("http", err)
	}
	guard := api.NewLoginGuard(cfg.API.LoginRate, cfg.API.LoginBurst, nil)
	csrfKey, err := loadOrCreateSecret(cfg.DataDir, webCSRFKeyFile, 32)
	if err != nil {
		return nil, supervisor.Named("http", fmt.Errorf("web CSRF key: %w", err))
	}
	// The health tracker, the HTTP and the SSH servers are read by the
	// web manager's status page only once they run.
	health := backend.NewTracker()
	var httpSrv *api.Server
	var sshSrv *sshserver.Server // set before any session can ask for the listeners
	manager, err := web.New(web.Config{Version: version, Logger: log},
		web.Deps{Core: c, Tokens: tokens, Guard: guard, ClientAddr: api.ClientAddr{Trusted: proxies}, CSRFKey: csrfKey,
			Appliance:   webAppliance(cfg, started, health, st, ready, func() []tui.Listener { return listeners(health, httpSrv, b, sshSrv) }),
			WebhookTest: mon.TestWebhook,
			History:     hist, Monitor: mon})
	if err != nil {
		return nil, supervisor.Named("http", err)
	}
	var streamed map[string]http.Handler
	var notice func() string
	if updates != nil {
		streamed = map[string]http.Handler{
			"/update":        updateHandler(updates, c, tokens),
			"/update/reboot": rebootHandler(osctl.FromEnv(), c, tokens),
		}
		notice = func() string { return update.Notice(updates.OutcomeFile) }
	}
	httpSrv, err = api.New(api.Config{
		Addr: cfg.HTTP.Addr, HTTPSAddr: cfg.HTTP.HTTPSAddr, TLS: b.TLSConfig(),
		Tokens:            tokens,
		AllowRegistration: cfg.API.AllowRegistration, TrustedProxies: proxies, CORSOrigins: cfg.HTTP.CORSOrigins,
		LoginPerMinute: cfg.API.LoginRate, LoginBurst: cfg.API.LoginBurst, LoginGuard: guard,
		MaxQueries: cfg.API.MaxQueries, MaxQueriesPerCaller: cfg.API.MaxQueriesPerCaller, QueryTimeout: cfg.API.QueryTimeout,
		Version: version, Logger: log,
	}, api.Deps{Core: c, GraphQL: gql, Ready: ready, Notice: notice, Routes: routes(c, metrics, mon, alertToken, dev, b), Streamed: streamed, Root: manager})
	if err != nil {
		return nil, supervisor.Named("http", err)
	}

	var sshSvc *sshService
	if cfg.SSH.Addr != "" {
		consoleMetrics := backend.NewMetrics(b, ing, 0)
		system := backend.NewSystem(backend.SystemConfig{
			DataDir: cfg.DataDir, Version: version, Core: c,
			TLS: b, Logs: logs, Logger: log, OS: osctl.FromEnv(),
			Updates: consoleUpdates(updates), FetchUpdate: consoleFetch(updates),
			Listeners: func() []tui.Listener { return listeners(health, httpSrv, b, sshSrv) },
		})
		sshCfg := cfg.SSH
		sshCfg.DataDir, sshCfg.Version, sshCfg.Logger = cfg.DataDir, version, log
		sshSrv, err = sshserver.New(sshCfg, tui.Deps{
			Core: c, Version: version, Started: started, DataDir: cfg.DataDir,
			Metrics: consoleMetrics,
			Health:  health,
			Live:    backend.NewLive(c, b, 0, 0),
			Clients: backend.NewClients(c, b),
			History: backend.NewHistory(c, hist, nil),
			Alarms:  backend.NewAlarms(mon),
			System:  system,
			Backups: backend.NewBackups(system),
			// The monitor checks with core itself (core.ActTestWebhook).
			Webhooks:       mon,
			AuthorizedKeys: backend.NewAuthorizedKeys(c, cfg.DataDir),
		})
		if err != nil {
			return nil, supervisor.Named("ssh", err)
		}
		sshSvc = &sshService{Server: sshSrv, metrics: consoleMetrics}
	}

	// Ingest starts before the broker so the journal is replayed before
	// any client can publish, and stops after it so everything
	// acknowledged is applied. The monitor starts after core and stops
	// before the store, because it writes alarms until it returns.
	track := health.Track
	services := []supervisor.Service{
		track(storeSvc, storeSvc.probe),
		track(&coreService{core: c, log: log}, coreProbe(c)),
		track(mon, monitorProbe(mon)),
		track(ing, ingestProbe(ing)),
		track(&brokerService{Broker: b, core: c, ing: ing, relay: dev.relay}, brokerProbe(b)),
	}
	if sshSvc != nil {
		services = append(services, track(sshSvc, sshProbe(sshSvc.Server)))
	}
	httpSvc := &httpService{Server: httpSrv, vd: newVDGPSListener(cfg.Adapter.VDGPSAddr, from(core.ViaAdapter, dev.vd), log)}
	services = append(services, track(httpSvc, httpProbe(httpSrv)))
	sup = supervisor.New(log, cfg.ShutdownTimeout, services...)

	a := &Appliance{sup: sup, broker: b, http: httpSrv}
	if sshSvc != nil {
		a.ssh = sshSvc.Server
	}
	return a, nil
}

// Run runs until ctx is cancelled or a service fails.
func (a *Appliance) Run(ctx context.Context) error { return a.sup.Run(ctx) }

// HTTPAddr is the bound HTTP address once running.
func (a *Appliance) HTTPAddr() string { return a.http.Addr() }

// ReloadTLS re-reads the MQTT TLS certificate (SIGHUP).
func (a *Appliance) ReloadTLS() error { return a.broker.ReloadTLS() }

// MQTTAddrs are the bound MQTT listener addresses by kind (tcp, tls, ws).
func (a *Appliance) MQTTAddrs() map[string]string { return a.broker.Addrs() }

// SSHAddr is the bound console address once running.
func (a *Appliance) SSHAddr() string {
	if a.ssh == nil {
		return ""
	}
	return a.ssh.Addr()
}

// readiness is /readyz: every service started and the store answering.
func readiness(ctx context.Context, sup *supervisor.Supervisor, st *store.Store, ing *ingest.Ingest) error {
	if err := sup.Ready(); err != nil {
		return err
	}
	if err := st.Ping(ctx); err != nil {
		return errors.New("store not reachable")
	}
	// A full disk: what arrives is refused until writing works again.
	return ing.Health()
}

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
