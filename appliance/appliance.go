// Package appliance is the composition root: it turns a Config into the
// running set of services, in dependency order (store → core → http).
package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/piot-appliance/piot/appliance/config"
	"github.com/piot-appliance/piot/appliance/supervisor"
	"github.com/piot-appliance/piot/services/api"
	"github.com/piot-appliance/piot/services/api/graph"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/store"
)

// Appliance is everything `piot run` runs.
type Appliance struct {
	cfg     config.Config
	log     *slog.Logger
	version string
	sup     *supervisor.Supervisor

	store *storeService
	core  *coreService
	http  *httpService
}

// New wires the services; nothing starts until Run.
func New(cfg config.Config, log *slog.Logger, version string) (*Appliance, error) {
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	a := &Appliance{cfg: cfg, log: log, version: version}
	a.store = &storeService{cfg: cfg, log: log}
	a.core = &coreService{cfg: cfg, log: log, store: a.store}
	a.http = &httpService{app: a}
	a.sup = supervisor.New(log, cfg.ShutdownTimeout, a.store, a.core, a.http)
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
	return nil
}

type storeService struct {
	cfg config.Config
	log *slog.Logger
	st  *store.Store
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
	mode := "embedded FerretDB (SQLite)"
	if !st.Embedded() {
		mode = "external"
	}
	s.log.Info("store open", "mode", mode)
	return nil
}

func (s *storeService) Stop(ctx context.Context) error { return s.st.Close(ctx) }

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

type httpService struct {
	app *Appliance
	srv *api.Server
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
		MaxDepth: a.cfg.GraphQLMaxDepth, MaxComplexity: a.cfg.GraphQLMaxCost, Logger: a.log,
	})
	srv, err := api.New(api.Config{
		Addr: a.cfg.HTTPAddr, JWTKey: key, JWTTTL: a.cfg.JWTTTL,
		AllowRegistration: a.cfg.AllowRegistration,
		LoginPerMinute:    a.cfg.LoginRate, LoginBurst: a.cfg.LoginBurst,
		Version: a.version, Logger: a.log,
	}, api.Deps{Core: a.core.c, GraphQL: gql, Ready: a.ready})
	if err != nil {
		return err
	}
	s.srv = srv
	return srv.Start(ctx)
}

func (s *httpService) Err() <-chan error { return s.srv.Err() }

func (s *httpService) Stop(ctx context.Context) error { return s.srv.Stop(ctx) }

// NewLogger builds the process logger from the configuration.
func NewLogger(cfg config.Config, w interface{ Write([]byte) (int, error) }) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
