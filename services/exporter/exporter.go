// Package exporter serves the appliance's Prometheus metrics: the broker,
// ingest, history and store counters, the Go runtime and the process, and
// one series per thing (availability, last seen, alarm, sensor value,
// switch state, battery, location). It also ships the Grafana provisioning
// bundle that reads them.
//
// The layout follows prometheus/node_exporter: one collector per file, one
// `piot_` namespace, `_total` on counters, base units, and for every
// collector a `piot_scrape_collector_duration_seconds` and
// `piot_scrape_collector_success` series, so a broken source shows up as a
// metric rather than as a failed scrape.
//
// Every scrape needs a bearer token. The appliance token sees everything;
// an organisation's token sees only the thing series of that organisation
// and nothing that describes the appliance as a whole.
package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/piot-appliance/piot/services/broker"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
	"github.com/piot-appliance/piot/services/ingest"
)

// namespace is the first part of every metric name the exporter defines.
const namespace = "piot"

// Defaults of Config.
const (
	DefaultStoreTimeout         = 2 * time.Second
	DefaultScrapeTimeout        = 10 * time.Second
	DefaultMaxConcurrentScrapes = 4
)

// Sources are what the exporter reads. A nil source leaves its collector
// out (and with it its metrics and meta-metrics).
type Sources struct {
	// Core provides the things (and the object counts).
	Core *core.Core
	// Broker returns the broker's counters ((*broker.Broker).Stats).
	Broker func() broker.Stats
	// Ingest returns the ingest counters ((*ingest.Ingest).Stats).
	Ingest func() map[ingest.Key]uint64
	// JournalLatency and JournalBatchSize return the ingest journal's
	// commit histograms ((*ingest.Ingest).JournalLatency and
	// JournalBatchSize); used only with Ingest.
	JournalLatency   func() ingest.HistogramSnapshot
	JournalBatchSize func() ingest.HistogramSnapshot
	// IngestFailing says which ingest stages cannot write now
	// ((*ingest.Ingest).WriteFailures); used only with Ingest.
	IngestFailing func() map[string]bool
	// History returns the history counters ((*history.Store).Stats).
	History func() history.Stats
	// StorePing checks that the store answers ((*store.Store).Ping or
	// (*core.Core).Ready).
	StorePing func(ctx context.Context) error
	// StoreOps returns the store's per-command latency and errors
	// ((*store.Store).OpStats, converted).
	StoreOps func() []StoreOp
	// AdapterRefused returns, by protocol, the device packets each adapter
	// refused by reason ((*adapter.Adapter).Stats, (*vdgps.Handler).Stats).
	AdapterRefused map[string]func() map[string]uint64
	// Relay returns the relayed packets by result ((*relay.Hook).Stats).
	Relay func() map[string]uint64
	// Version is the appliance version, for piot_build_info.
	Version string
	// Update reports the system slots and the last update (piot_update_*);
	// nil when updates are off.
	Update func() (UpdateStatus, error)
}

// Config tunes the exporter; the zero value is usable.
type Config struct {
	// StoreTimeout bounds the store ping of one scrape (default 2 s).
	StoreTimeout time.Duration
	// ScrapeTimeout bounds one scrape; a slower one is answered with 503
	// (default 10 s).
	ScrapeTimeout time.Duration
	// MaxConcurrentScrapes bounds the scrapes served at once, whatever
	// their token; more are answered with 503 (default 4).
	MaxConcurrentScrapes int
	// Logger logs collector failures; nil discards them.
	Logger *slog.Logger
}

// Scope is what an authorized scraper may see.
type Scope = core.MetricsScope

// Authorizer decides who may scrape; false means unauthorized.
type Authorizer func(r *http.Request) (Scope, bool)

// Exporter owns the registry of the appliance metrics.
type Exporter struct {
	src    Sources
	cfg    Config
	all    http.Handler  // the full registry, for Scope.All
	slots  chan struct{} // one per scrape being served
	errLog promhttp.Logger
}

// New builds the collectors of the sources given.
func New(src Sources, cfg Config) (*Exporter, error) {
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = DefaultStoreTimeout
	}
	if cfg.ScrapeTimeout <= 0 {
		cfg.ScrapeTimeout = DefaultScrapeTimeout
	}
	if cfg.MaxConcurrentScrapes <= 0 {
		cfg.MaxConcurrentScrapes = DefaultMaxConcurrentScrapes
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Exporter{
		src:    src,
		cfg:    cfg,
		slots:  make(chan struct{}, cfg.MaxConcurrentScrapes),
		errLog: promLogger{log},
	}

	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newApplianceCollector(e.applianceCollectors(), log),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("exporter: %w", err)
		}
	}
	e.all = e.handlerFor(reg)
	return e, nil
}

// applianceCollectors lists the collectors of the sources present, in the
// order of the output.
func (e *Exporter) applianceCollectors() []namedCollector {
	cs := []namedCollector{{"build_info", buildInfoCollector{version: e.src.Version}}}
	if e.src.Broker != nil {
		cs = append(cs, namedCollector{"broker", brokerCollector{stats: e.src.Broker}})
	}
	if e.src.Ingest != nil {
		cs = append(cs, namedCollector{"ingest", ingestCollector{stats: e.src.Ingest, latency: e.src.JournalLatency, batch: e.src.JournalBatchSize, failing: e.src.IngestFailing}})
	}
	if e.src.History != nil {
		cs = append(cs, namedCollector{"history", historyCollector{stats: e.src.History}})
	}
	if e.src.AdapterRefused != nil || e.src.Relay != nil {
		cs = append(cs, namedCollector{"adapter", adapterCollector{refused: e.src.AdapterRefused, relay: e.src.Relay}})
	}
	if e.src.StorePing != nil {
		cs = append(cs, namedCollector{"store", storeCollector{ping: e.src.StorePing, ops: e.src.StoreOps, timeout: e.cfg.StoreTimeout}})
	}
	if e.src.Update != nil {
		cs = append(cs, namedCollector{"update", updateCollector{status: e.src.Update}})
	}
	if e.src.Core != nil {
		cs = append(cs,
			namedCollector{"objects", objectsCollector{core: e.src.Core}},
			namedCollector{"audit", auditCollector{core: e.src.Core}},
			namedCollector{"things", &thingsCollector{core: e.src.Core}})
	}
	return cs
}

// Handler serves GET /metrics to the scrapers auth lets in. A nil auth lets
// nobody in.
func (e *Exporter) Handler(auth Authorizer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var scope Scope
		ok := false
		if auth != nil {
			scope, ok = auth(r)
		}
		if !ok || (!scope.All && scope.OrgID.IsZero()) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="piot metrics"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		select {
		case e.slots <- struct{}{}:
			defer func() { <-e.slots }()
		default:
			http.Error(w, "too many concurrent scrapes", http.StatusServiceUnavailable)
			return
		}
		if scope.All {
			e.all.ServeHTTP(w, r)
			return
		}
		e.orgHandler(scope.OrgID).ServeHTTP(w, r)
	})
}

// orgHandler serves the thing metrics of one org. The registry is built per
// scrape: it is a few allocations, and nothing outside the org's things can
// leak into it.
func (e *Exporter) orgHandler(org core.ID) http.Handler {
	reg := prometheus.NewRegistry()
	if e.src.Core != nil {
		reg.MustRegister(&thingsCollector{core: e.src.Core, org: org})
	}
	return e.handlerFor(reg)
}

func (e *Exporter) handlerFor(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      e.errLog,
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       e.cfg.ScrapeTimeout,
	})
}

// promLogger hands promhttp's errors to slog.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) {
	var err error
	if len(v) == 1 {
		err, _ = v[0].(error)
	}
	if err == nil {
		err = errors.New(fmt.Sprint(v...))
	}
	l.log.Warn("metrics: serving a scrape", "err", err)
}
