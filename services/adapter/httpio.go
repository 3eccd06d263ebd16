package adapter

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"sync"

	"github.com/piot-appliance/piot/services/core"
)

// Rejections counts refused requests by reason; every device protocol
// handler keeps one (metrics read the snapshot).
type Rejections struct {
	mu sync.Mutex
	m  map[string]uint64
}

// Add counts one rejection.
func (r *Rejections) Add(reason string) {
	r.mu.Lock()
	if r.m == nil {
		r.m = map[string]uint64{}
	}
	r.m[reason]++
	r.mu.Unlock()
}

// Snapshot returns the counts.
func (r *Rejections) Snapshot() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]uint64, len(r.m))
	maps.Copy(out, r.m)
	return out
}

type answer struct {
	Error  string `json:"error"`
	Result string `json:"result"`
}

// WriteAnswer writes the original protocol's answer envelope.
func WriteAnswer(w http.ResponseWriter, status int, errMsg, result string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(answer{Error: errMsg, Result: result})
}

// Reject counts a rejection and answers it.
func (r *Rejections) Reject(w http.ResponseWriter, status int, reason, msg string) {
	r.Add(reason)
	WriteAnswer(w, status, msg, "")
}

// ReadPOST accepts only POST and reads a body of at most max bytes; on
// failure it has answered (405, 413 or 400) and counted the rejection.
func ReadPOST(w http.ResponseWriter, r *http.Request, max int64, rej *Rejections) ([]byte, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		rej.Reject(w, http.StatusMethodNotAllowed, ReasonMethod, "only POST method is allowed")
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			rej.Reject(w, http.StatusRequestEntityTooLarge, ReasonTooLarge, "request body too large")
			return nil, false
		}
		rej.Reject(w, http.StatusBadRequest, ReasonRead, "cannot read request body")
		return nil, false
	}
	return body, true
}

// DeliveryOrg is the gate every device protocol applies after
// registration: an unassigned or disabled device is answered 202 with the
// reason (its data is not published), otherwise the org to publish under
// is returned.
func DeliveryOrg(w http.ResponseWriter, c *core.Core, dev core.Thing, rej *Rejections) (string, bool) {
	if !dev.OrgID.IsZero() && !dev.Enabled {
		rej.Add(ReasonDisabled)
		WriteAnswer(w, http.StatusAccepted, "", ResultDisabled)
		return "", false
	}
	org, ok := c.OrgNameOf(dev.OrgID)
	if !ok {
		rej.Add(ReasonNotAssigned)
		WriteAnswer(w, http.StatusAccepted, "", ResultNotAssigned)
		return "", false
	}
	return org, true
}
