package appliance

import (
	"net/http"

	"github.com/piot-appliance/piot/services/api"
	"github.com/piot-appliance/piot/services/broker"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/exporter"
	"github.com/piot-appliance/piot/services/monitor"
)

// routes are what the HTTP listener (and the HTTPS one, when configured)
// serves beside the API. The API's own paths are services/api's
// (api.Server.Handler), listed here so this file is the one map:
//
//	/healthz                    alive
//	/readyz                     every service started, the store answering, ingest writing (readiness)
//	/login, /refresh, /register API tokens and self-registration
//	/query                      GraphQL (graph.NewHandler)
//	/api/…                      the same four, for the original manager behind a proxy
//	/gql/                       GraphiQL
//	/update                     update status and bundle installs, admins only (appliance/updates.go; only with
//	                            update-slots-dir; streamed: outside the API's body limit)
//	/                           the web manager (services/web): /, /signin,
//	                            /logout, /orgs…, /users…, /events, /static/…,
//	                            /onboarding, /tokens…, /webhooks…, /status;
//	                            every path not listed here
//
// The legacy VD GPS listener (--adapter-vdgps-addr) serves /adapter/vdgps's
// handler on every path of its own address (httpService).
func routes(c *core.Core, m metrics, mon *monitor.Monitor, alertToken string, dev devices, b *broker.Broker) map[string]http.Handler {
	return map[string]http.Handler{
		// Prometheus: the global token sees everything, an org's token its
		// own things.
		"/metrics": m.exp.Handler(m.auth),
		// Grafana's provisioning bundle; no secrets inside.
		"/grafana.tar.gz": exporter.GrafanaBundle(),
		// Grafana's alert webhook (bearer alert token), which names things
		// by the exporter's labels.
		"/alerts/grafana": from(core.ViaAPI, mon.GrafanaAlerts(alertToken, func(org, thing string) (core.ID, bool) {
			return exporter.ThingByLabels(c, org, thing)
		})),
		// The PIOT device protocol, as devices send it today.
		"/adapter": from(core.ViaAdapter, dev.piot.Handler()),
		// VD GPS trackers upload batches of fixes.
		"/adapter/vdgps": from(core.ViaAdapter, dev.vd),
		// The appliance CA, so devices can pin it.
		"/ca.crt": caHandler(b.CACertPEM),
	}
}

// from names where what a route changes comes from, for the audit trail:
// the device protocols register things (core records the change as the
// system's, from the adapter and the device's address), Grafana sets
// alarms through its API.
func from(via string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		src := core.Source{Via: via, Addr: api.ClientAddr{}.Of(r)}
		h.ServeHTTP(w, r.WithContext(core.WithSource(r.Context(), src)))
	})
}

// caHandler serves the appliance CA; it is public by nature.
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
