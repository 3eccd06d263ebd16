package appliance

import (
	"net/http"

	"github.com/piot-appliance/piot/appliance/config"
	"github.com/piot-appliance/piot/services/adapter"
	"github.com/piot-appliance/piot/services/adapter/relay"
	"github.com/piot-appliance/piot/services/adapter/vdgps"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/exporter"
	"github.com/piot-appliance/piot/services/store"
)

// File names of the generated scrape and alert tokens in the data dir.
const (
	metricsTokenFile = "metrics-token"
	alertTokenFile   = "alert-token"
)

// secretOrFile returns the configured secret, or the one generated at first
// start into the data directory (0600).
func (a *Appliance) secretOrFile(configured, file string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	b, err := loadOrCreateSecret(a.cfg.DataDir, file, 32)
	return string(b), err
}

// metricsRoutes are /metrics (global or per-org bearer token),
// /grafana.tar.gz (the provisioning bundle, no secrets inside) and
// /alerts/grafana (Grafana's webhook, bearer alert token).
func (a *Appliance) metricsRoutes(metricsToken, alertToken string) (map[string]http.Handler, error) {
	exp, err := exporter.New(exporter.Sources{
		Core:           a.core.c,
		Broker:         a.broker.b.Stats,
		Ingest:         a.ingest.ing.Stats,
		JournalLatency: a.ingest.ing.JournalLatency, JournalBatchSize: a.ingest.ing.JournalBatchSize,
		IngestFailing: a.ingest.ing.WriteFailures,
		History:       a.ingest.hist.Stats,
		StorePing:     a.store.st.Ping,
		StoreOps:      func() []exporter.StoreOp { return storeOps(a.store.st.OpStats()) },
		AdapterRefused: map[string]func() map[string]uint64{
			relay.ProtoPIOT: a.broker.piot.Stats, relay.ProtoVDGPS: a.broker.vd.Stats,
		},
		Relay:   a.broker.relay.Stats,
		Version: a.version,
	}, exporter.Config{Logger: a.log.With("service", "exporter")})
	if err != nil {
		return nil, err
	}
	auth := exporter.BearerAuthorizer(metricsToken, a.core.c.OrgByMetricsToken)
	return map[string]http.Handler{
		"/metrics":        exp.Handler(auth),
		"/grafana.tar.gz": exporter.GrafanaBundle(),
		"/alerts/grafana": a.monitor.m.GrafanaAlerts(alertToken, func(org, thing string) (core.ID, bool) {
			return exporter.ThingByLabels(a.core.c, org, thing)
		}),
		// The PIOT device protocol, as devices send it today.
		"/adapter": a.broker.piot.Handler(),
		// VD GPS trackers upload batches of fixes.
		"/adapter/vdgps": a.broker.vd,
	}, nil
}

// storeOps hands the store's command statistics to the exporter, which
// does not import the store.
func storeOps(ops []store.OpStat) []exporter.StoreOp {
	out := make([]exporter.StoreOp, len(ops))
	for i, op := range ops {
		out[i] = exporter.StoreOp{
			Name: op.Name, Buckets: store.OpBuckets, Counts: op.Counts,
			Sum: op.Sum, Count: op.Count, Errors: op.Errors,
		}
	}
	return out
}

// newAdapters builds the device adapters and the relay hook that feeds
// them edge adapters' packets.
func (s *brokerService) newAdapters() error {
	a := s.app
	var err error
	s.piot, err = adapter.New(adapter.Config{
		AESKey: a.cfg.AdapterAESKey, MinInterval: config.AdapterMinInterval(a.cfg.AdapterMinInterval),
		MaxUnassigned: a.cfg.AdapterMaxUnassigned, Logger: a.log.With("service", "adapter"),
	}, adapter.Deps{Core: a.core.c, Publish: a.ingest.ing})
	if err != nil {
		return err
	}
	s.vd, err = vdgps.New(vdgps.Config{MaxUnassigned: a.cfg.AdapterMaxUnassigned, Logger: a.log.With("service", "vdgps")},
		vdgps.Deps{Core: a.core.c, Publish: a.ingest.ing, Limit: s.piot.Limit})
	if err != nil {
		return err
	}
	s.relay, err = relay.New(relay.Config{Logger: a.log}, relay.Deps{
		Core:     a.core.c,
		Marks:    a.ingest.ing.RelayMarks(),
		Handlers: map[string]relay.Handler{relay.ProtoPIOT: s.piot, relay.ProtoVDGPS: s.vd},
	})
	return err
}
