package appliance

import (
	"fmt"
	"log/slog"

	"github.com/piot-appliance/piot/appliance/config"
	"github.com/piot-appliance/piot/appliance/update"
	"github.com/piot-appliance/piot/services/adapter/relay"
	"github.com/piot-appliance/piot/services/broker"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/exporter"
	"github.com/piot-appliance/piot/services/history"
	"github.com/piot-appliance/piot/services/ingest"
	"github.com/piot-appliance/piot/services/store"
)

// File names of the generated secrets in the data dir.
const (
	jwtKeyFile       = "jwt.key"
	webCSRFKeyFile   = "web-csrf.key"
	metricsTokenFile = "metrics-token"
	alertTokenFile   = "alert-token"
)

// metrics is /metrics: the exporter and who may scrape it.
type metrics struct {
	exp  *exporter.Exporter
	auth exporter.Authorizer
}

// newExporter collects every service's counters for Prometheus.
func newExporter(cfg config.Config, c *core.Core, st *store.Store, hist *history.Store, ing *ingest.Ingest,
	b *broker.Broker, dev devices, updates *update.Service, version string, log *slog.Logger) (metrics, error) {
	token, err := secretOrFile(cfg.DataDir, cfg.Exporter.Token, metricsTokenFile)
	if err != nil {
		return metrics{}, fmt.Errorf("metrics token: %w", err)
	}
	var updateStatus func() (exporter.UpdateStatus, error)
	if updates != nil {
		updateStatus = func() (exporter.UpdateStatus, error) { return exportedUpdate(updates.Status()) }
	}
	exp, err := exporter.New(exporter.Sources{
		Core:           c,
		Broker:         b.Stats,
		Ingest:         ing.Stats,
		JournalLatency: ing.JournalLatency, JournalBatchSize: ing.JournalBatchSize,
		IngestFailing: ing.WriteFailures,
		History:       hist.Stats,
		StorePing:     st.Ping,
		StoreOps:      func() []exporter.StoreOp { return storeOps(st.OpStats()) },
		AdapterRefused: map[string]func() map[string]uint64{
			relay.ProtoPIOT: dev.piot.Stats, relay.ProtoVDGPS: dev.vd.Stats,
		},
		Relay:   dev.relay.Stats,
		Version: version,
		Update:  updateStatus,
	}, exporter.Config{Logger: log.With("service", "exporter")})
	if err != nil {
		return metrics{}, err
	}
	return metrics{exp: exp, auth: exporter.BearerAuthorizer(token, c.OrgByMetricsToken)}, nil
}

// exportedUpdate hands the update status to the exporter, which does not
// import appliance/update.
func exportedUpdate(st update.Status, err error) (exporter.UpdateStatus, error) {
	out := exporter.UpdateStatus{Slot: st.Slot, OtherSlotVersion: st.OtherSlotVersion, OtherSlotState: st.OtherSlotState}
	if u := st.LastUpdate; u != nil {
		out.LastResult, out.LastVersion, out.LastAt = u.Result, u.Version, u.At
	}
	if st.RebootAt != nil {
		out.RebootAt = *st.RebootAt
	}
	return out, err
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

// secretOrFile returns the configured secret, or the one generated at first
// start into the data directory (0600).
func secretOrFile(dataDir, configured, file string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	b, err := loadOrCreateSecret(dataDir, file, 32)
	return string(b), err
}

// loadJWTKey is the configured API signing key, or the one generated at first
// start.
func loadJWTKey(cfg config.Config) ([]byte, error) {
	if cfg.API.JWTKey != "" {
		return []byte(cfg.API.JWTKey), nil
	}
	k, err := loadOrCreateSecret(cfg.DataDir, jwtKeyFile, 32)
	if err != nil {
		return nil, fmt.Errorf("JWT key: %w", err)
	}
	return k, nil
}
