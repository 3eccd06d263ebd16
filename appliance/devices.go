package appliance

import (
	"log/slog"

	"github.com/piot-appliance/piot/appliance/config"
	"github.com/piot-appliance/piot/services/adapter"
	"github.com/piot-appliance/piot/services/adapter/relay"
	"github.com/piot-appliance/piot/services/adapter/vdgps"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/ingest"
)

// devices are the device adapters, served on the HTTP listener, and the
// relay hook that feeds them edge adapters' packets from the broker.
// Both publish through the ingest: journaled, then delivered.
type devices struct {
	piot  *adapter.Adapter
	vd    *vdgps.Handler
	relay *relay.Hook
}

func newDevices(cfg config.Adapter, c *core.Core, ing *ingest.Ingest, log *slog.Logger) (devices, error) {
	piot, err := adapter.New(adapter.Config{
		AESKey: cfg.AESKey, MinInterval: config.AdapterMinInterval(cfg.MinInterval),
		MaxUnassigned: cfg.MaxUnassigned, Logger: log.With("service", "adapter"),
	}, adapter.Deps{Core: c, Publish: ing})
	if err != nil {
		return devices{}, err
	}
	vd, err := vdgps.New(vdgps.Config{MaxUnassigned: cfg.MaxUnassigned, Logger: log.With("service", "vdgps")},
		vdgps.Deps{Core: c, Publish: ing, Limit: piot.Limit})
	if err != nil {
		return devices{}, err
	}
	rl, err := relay.New(relay.Config{Logger: log}, relay.Deps{
		Core:     c,
		Marks:    ing.RelayMarks(),
		Handlers: map[string]relay.Handler{relay.ProtoPIOT: piot, relay.ProtoVDGPS: vd},
	})
	if err != nil {
		return devices{}, err
	}
	return devices{piot: piot, vd: vd, relay: rl}, nil
}
