package appliance

import (
	"context"
	"time"

	"github.com/piot-appliance/piot/appliance/config"
	"github.com/piot-appliance/piot/services/store"
	"github.com/piot-appliance/piot/services/web"
	"github.com/piot-appliance/piot/tui"
	"github.com/piot-appliance/piot/tui/backend"
)

// webAppliance is what the web manager's onboarding and status pages
// read: the health tracker the console's dashboard shows (and whose
// services /readyz waits for), the bound listeners, the store's ping and
// the data directory. listen is read only when a page asks, so it may
// name servers built after the web manager.
func webAppliance(cfg config.Config, started time.Time, health *backend.Tracker, st *store.Store,
	ready func(ctx context.Context) error, listen func() []tui.Listener) web.Appliance {
	return web.Appliance{
		Started: started,
		DataDir: cfg.DataDir,
		Services: func() []web.ServiceStatus {
			var out []web.ServiceStatus
			for _, s := range health.Services() {
				out = append(out, web.ServiceStatus{Name: s.Name, OK: s.OK, Detail: s.Detail})
			}
			return out
		},
		Listeners: func() []web.Listener {
			var out []web.Listener
			for _, l := range listen() {
				out = append(out, web.Listener{Name: l.Name, Addr: l.Addr, TLS: l.TLS, Fingerprint: l.CertSHA, Expires: l.Expires})
			}
			if cfg.Adapter.VDGPSAddr != "" && health.Running("http") {
				out = append(out, web.Listener{Name: "vdgps", Addr: cfg.Adapter.VDGPSAddr})
			}
			return out
		},
		Store:         st.Ping,
		Ready:         ready,
		AdapterKeySet: cfg.Adapter.AESKey != "",
	}
}
