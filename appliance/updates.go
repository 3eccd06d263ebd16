package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/piot-appliance/piot/appliance/config"
	"github.com/piot-appliance/piot/appliance/osctl"
	"github.com/piot-appliance/piot/appliance/update"
	"github.com/piot-appliance/piot/internal/httpx"
	"github.com/piot-appliance/piot/services/api"
	"github.com/piot-appliance/piot/services/api/graph/model"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/tui"
)

// efivars is where the kernel shows EFI variables; piot init mounts it.
const efivars = "/sys/firmware/efi/efivars"

// updateOutcomeFile keeps the last update's outcome on the data
// partition, which both slots share.
const updateOutcomeFile = "update.json"

// newUpdates builds GET/POST /update when the configuration names the
// slots directory (the image does); nil otherwise. The running slot is
// the one systemd-boot says it booted.
func newUpdates(cfg config.Updates, dataDir, version string, log *slog.Logger) (*update.Service, error) {
	if cfg.SlotsDir == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(cfg.Keys)
	if err != nil {
		return nil, fmt.Errorf("update keys: %w", err)
	}
	keys, err := update.ParsePublicKeys(pem)
	if err != nil {
		return nil, fmt.Errorf("update keys %s: %w", cfg.Keys, err)
	}
	slot, ok, err := update.BootedSlot(efivars)
	if err != nil {
		return nil, err
	}
	if !ok {
		log.Warn("not booted from an A/B slot: updates are off", "slots_dir", cfg.SlotsDir)
	}
	return &update.Service{
		Version:     version,
		Slot:        slot,
		Slots:       update.Slots{Dir: cfg.SlotsDir},
		Verifier:    update.Verifier{Keys: keys, Target: update.Target(), Running: version},
		OutcomeFile: filepath.Join(dataDir, updateOutcomeFile),
		Log:         log.With("service", "update"),
		RebootAt: func() time.Time {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			st, err := osctl.FromEnv().State(ctx)
			if err != nil {
				return time.Time{}
			}
			return st.RebootAt
		},
	}, nil
}

// updateHandler serves /update to admins: the caller's bearer token is
// its identity, and core decides (core.ActUpdate).
func updateHandler(svc *update.Service, c *core.Core, tokens *api.Tokens) http.Handler {
	return svc.Handler(adminOnly(c, tokens, core.ActUpdate))
}

// rebootHandler is /update/reboot, to try an installed update: POST
// reboots now, or at ?at= (RFC 3339, a quiet hour); DELETE cancels a
// scheduled reboot. piot init reboots and keeps the schedule.
func rebootHandler(init *osctl.Client, c *core.Core, tokens *api.Tokens) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodDelete {
			w.Header().Set("Allow", "POST, DELETE")
			httpx.WriteError(w, http.StatusMethodNotAllowed, core.CodeBadInput, "only POST and DELETE are allowed")
			return
		}
		actor, ok := authorizeAdmin(c, tokens, core.ActReboot, w, r)
		if !ok {
			return
		}
		var at time.Time
		if q := r.URL.Query().Get("at"); q != "" && r.Method == http.MethodPost {
			t, err := time.Parse(time.RFC3339, q)
			if err != nil {
				httpx.WriteError(w, http.StatusBadRequest, core.CodeBadInput, fmt.Sprintf("at %q: want an RFC 3339 time such as 2026-12-24T03:00:00+01:00", q))
				return
			}
			at = t
		}
		var err error
		var answer string
		switch {
		case r.Method == http.MethodDelete:
			err, answer = init.ScheduleReboot(r.Context(), time.Time{}), "scheduled reboot cancelled"
			if err == nil {
				record(c, r, actor, "cancelReboot", "appliance")
			}
		case at.IsZero():
			// Recorded before: the reboot may end this process first.
			record(c, r, actor, "reboot", "appliance")
			err, answer = init.Do(r.Context(), osctl.Reboot), "rebooting"
		default:
			err, answer = init.ScheduleReboot(r.Context(), at), "reboot scheduled at "+at.Format(time.RFC3339)
			if err == nil {
				record(c, r, actor, "scheduleReboot", "appliance at "+at.UTC().Format(time.RFC3339))
			}
		}
		var refused *osctl.Error
		switch {
		case errors.Is(err, osctl.ErrNoInit):
			httpx.WriteError(w, http.StatusServiceUnavailable, core.CodeUnavailable, err.Error())
		case errors.As(err, &refused) && refused.Status == http.StatusBadRequest:
			httpx.WriteError(w, http.StatusBadRequest, core.CodeBadInput, err.Error())
		case err != nil:
			httpx.WriteError(w, http.StatusBadGateway, core.CodeInternal, err.Error())
		default:
			httpx.WriteJSON(w, http.StatusOK, map[string]string{"result": answer})
		}
	})
}

// record adds an API change made outside core to the audit trail.
func record(c *core.Core, r *http.Request, actor core.Actor, action, target string) {
	ctx := core.WithSource(r.Context(), core.Source{Via: core.ViaAPI, Addr: api.ClientAddr{}.Of(r)})
	c.Record(ctx, actor, action, target)
}

// adminOnly is authorizeAdmin for update.Service's handler; the upload
// of a bundle is recorded in the audit trail when it starts, since an
// install that fails is an attempt the admin wants to see too.
func adminOnly(c *core.Core, tokens *api.Tokens, action core.AdminAction) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		actor, ok := authorizeAdmin(c, tokens, action, w, r)
		if ok && r.Method == http.MethodPost {
			record(c, r, actor, "installUpdate", "update bundle upload")
		}
		return ok
	}
}

// authorizeAdmin answers a caller core does not let do action and
// returns false; the caller's bearer token is its identity.
func authorizeAdmin(c *core.Core, tokens *api.Tokens, action core.AdminAction, w http.ResponseWriter, r *http.Request) (core.Actor, bool) {
	actor := core.Anonymous()
	if tok, ok := httpx.BearerToken(r); ok {
		a, _, err := tokens.Actor(c, tok)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="piot"`)
			httpx.WriteError(w, http.StatusUnauthorized, core.CodeUnauthenticated, "invalid or expired token")
			return actor, false
		}
		actor = a
	}
	if err := core.AuthorizeAdmin(actor, action); err != nil {
		status := http.StatusForbidden
		if core.CodeOf(err) == core.CodeUnauthenticated {
			w.Header().Set("WWW-Authenticate", `Bearer realm="piot"`)
			status = http.StatusUnauthorized
		}
		httpx.WriteError(w, status, core.CodeOf(err), core.Message(err))
		return actor, false
	}
	return actor, true
}

// systemStatus answers GraphQL's system query from the update status;
// without slots (updates off) only the version is known.
func systemStatus(svc *update.Service, version string) func(context.Context) (*model.System, error) {
	return func(context.Context) (*model.System, error) {
		if svc == nil {
			return &model.System{Version: version}, nil
		}
		st, err := svc.Status()
		if err != nil {
			return nil, err
		}
		sys := &model.System{Version: st.Version, Slot: orNil(st.Slot), OtherSlotVersion: orNil(st.OtherSlotVersion), OtherSlotState: orNil(st.OtherSlotState)}
		if st.RebootAt != nil {
			at := st.RebootAt.Unix()
			sys.RebootAt = &at
		}
		if u := st.LastUpdate; u != nil {
			sys.LastUpdate = &model.UpdateOutcome{Result: u.Result, Reason: orNil(u.Reason), Detail: orNil(u.Detail),
				Version: orNil(u.Version), Slot: orNil(u.Slot), At: u.At.Unix()}
		}
		return sys, nil
	}
}

// orNil is GraphQL's null for an empty string.
func orNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// consoleUpdates hands the update status to the console's System screen;
// nil (nothing to show) when the system was not booted from a slot.
func consoleUpdates(svc *update.Service) func() (tui.UpdateInfo, error) {
	if svc == nil || svc.Slot == "" {
		return nil
	}
	return func() (tui.UpdateInfo, error) {
		st, err := svc.Status()
		if err != nil {
			return tui.UpdateInfo{}, err
		}
		u := tui.UpdateInfo{Version: st.Version, Slot: st.Slot, OtherSlotVersion: st.OtherSlotVersion, OtherSlotState: st.OtherSlotState}
		if l := st.LastUpdate; l != nil {
			u.LastResult, u.LastVersion, u.LastReason, u.LastAt = l.Result, l.Version, l.Reason, l.At
		}
		if st.RebootAt != nil {
			u.RebootAt = *st.RebootAt
		}
		if d := st.Fetch; d != nil {
			u.Download = &tui.UpdateDownload{URL: d.URL, Done: d.Done, Total: d.Total, Running: d.Running, Err: d.Err}
		}
		return u, nil
	}
}

// fetchTimeout bounds one request of the appliance's own download of a
// bundle; a slow link continues with the next request (Range) from where
// the install stopped.
const fetchTimeout = 10 * time.Minute

// consoleFetch starts the appliance's own download of a bundle for the
// console; it runs for the process's life, not the console session's.
func consoleFetch(svc *update.Service) func(url string) error {
	if svc == nil || svc.Slot == "" {
		return nil
	}
	hc := &http.Client{Timeout: fetchTimeout}
	return func(url string) error { return svc.StartFetch(context.Background(), hc, url) }
}
