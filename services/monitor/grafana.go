package monitor

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"

	"github.com/piot-appliance/piot/internal/httpx"
	"github.com/piot-appliance/piot/services/core"
)

// maxAlertBody bounds a Grafana webhook notification.
const maxAlertBody = 1 << 20

// ThingFinder finds the thing an alert names by the org and thing labels
// the exporter gave its metrics (exporter.ThingByLabels); the labels are
// the exporter's, so the monitor asks rather than recomputing them.
type ThingFinder func(org, thing string) (core.ID, bool)

// grafanaNotification is the part of Grafana's webhook payload PIOT reads.
type grafanaNotification struct {
	Alerts []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

// GrafanaAlerts is POST /alerts/grafana: Grafana's "thing not seen"
// notifications raise and clear things' alarms, the Grafana → PIOT arrow
// of the original design. Grafana authenticates with the bearer token;
// an empty token refuses every request.
func (m *Monitor) GrafanaAlerts(token string, things ThingFinder) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			httpx.WriteError(w, http.StatusMethodNotAllowed, core.CodeBadInput, "only POST method is allowed")
			return
		}
		tok, ok := httpx.BearerToken(r)
		got := sha256.Sum256([]byte(tok))
		if token == "" || !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="piot alerts"`)
			httpx.WriteError(w, http.StatusUnauthorized, core.CodeUnauthenticated, "invalid or missing alert token")
			return
		}
		var body grafanaNotification
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAlertBody)).Decode(&body); err != nil {
			httpx.WriteError(w, http.StatusBadRequest, core.CodeBadInput, "malformed JSON body")
			return
		}
		applied, unknown := 0, 0
		for _, al := range body.Alerts {
			if al.Labels["piot_alert"] != "thing_not_seen" {
				continue
			}
			id, ok := things(al.Labels["org"], al.Labels["thing"])
			if !ok {
				unknown++
				continue
			}
			if _, err := m.core.SetThingAlarm(r.Context(), core.System(), id, al.Status == "firing"); err != nil {
				m.log.Error("grafana alert not applied", "org", al.Labels["org"], "thing", al.Labels["thing"], "err", err)
				httpx.WriteError(w, http.StatusInternalServerError, core.CodeInternal, "alert not applied")
				return
			}
			applied++
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int{"applied": applied, "unknown": unknown})
	})
}
