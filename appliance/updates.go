package appliance

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/piot-appliance/piot/appliance/config"
	"github.com/piot-appliance/piot/appliance/update"
	"github.com/piot-appliance/piot/internal/httpx"
	"github.com/piot-appliance/piot/services/api"
	"github.com/piot-appliance/piot/services/core"
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
	}, nil
}

// updateHandler serves /update to admins: the caller's bearer token is
// its identity, and core decides (core.ActUpdate).
func updateHandler(svc *update.Service, c *core.Core, tokens *api.Tokens) http.Handler {
	return svc.Handler(func(w http.ResponseWriter, r *http.Request) bool {
		actor := core.Anonymous()
		if tok, ok := httpx.BearerToken(r); ok {
			a, _, err := tokens.Actor(c, tok)
			if err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="piot"`)
				httpx.WriteError(w, http.StatusUnauthorized, core.CodeUnauthenticated, "invalid or expired token")
				return false
			}
			actor = a
		}
		if err := core.AuthorizeAdmin(actor, core.ActUpdate); err != nil {
			status := http.StatusForbidden
			if core.CodeOf(err) == core.CodeUnauthenticated {
				w.Header().Set("WWW-Authenticate", `Bearer realm="piot"`)
				status = http.StatusUnauthorized
			}
			httpx.WriteError(w, status, core.CodeOf(err), core.Message(err))
			return false
		}
		if r.Method == http.MethodPost {
			// Recorded when the upload starts: an install that fails is
			// an attempt the admin wants to see too.
			ctx := core.WithSource(r.Context(), core.Source{Via: core.ViaAPI, Addr: api.ClientAddr{}.Of(r)})
			c.Record(ctx, actor, "installUpdate", "update bundle upload")
		}
		return true
	})
}
