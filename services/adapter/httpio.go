package adapter

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"time"

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

// Source says where a packet came from.
type Source struct {
	// OrgID is the organization whose edge adapter relayed the packet
	// (zero: the device sent it here directly). Relayed packets are not
	// rate limited again, register new things into that organization
	// and reach only that organization's things.
	OrgID core.ID
	// Received is when the edge adapter received the packet; it stands in
	// for a device without its own time.
	Received time.Time
	// Device is set when the edge adapter logged in with a device's own
	// credentials: only that device and its sensors may be fed.
	Device core.ID
	// With are published together with the packet's messages, all or
	// none, when the packet is answered 200 (the relay's mark that the
	// packet was processed).
	With []Message
}

// Relayed reports whether an edge adapter relayed the packet.
func (s Source) Relayed() bool { return !s.OrgID.IsZero() }

func (s Source) mayDeliver(t core.Thing) bool {
	return !s.Relayed() || core.MayRelayTo(s.OrgID, s.Device, t)
}

// CheckDevice refuses, before anything is registered, a packet relayed
// with a device's own credentials that is not that device's.
func CheckDevice(c *core.Core, piotID string, src Source) Outcome {
	if src.Device.IsZero() {
		return Outcome{}
	}
	if t, ok := c.ThingByPiotID(piotID); !ok || t.ID != src.Device {
		return reject(http.StatusForbidden, ReasonForeignDevice, "packet of another device than the credentials'")
	}
	return Outcome{}
}

// Outcome is the answer to one device packet.
type Outcome struct {
	Status int
	// Reason is the counted reason of a rejection or of a 202.
	Reason string
	// Msg is the error text, Result the result text of the answer.
	Msg, Result string
	// RetryAfter, if set, goes out as the Retry-After header (seconds).
	RetryAfter time.Duration
}

func reject(status int, reason, msg string) Outcome {
	return Outcome{Status: status, Reason: reason, Msg: msg}
}

// Retry-After of the answers to packets the appliance could not store:
// a full disk takes an admin, anything else (a store outage, a restart)
// usually passes within seconds.
const (
	retryStorageFull = time.Minute
	retryUnavailable = 5 * time.Second
)

// PublishRefused answers a packet whose messages were not stored: 507
// when the appliance's storage is full, else 503; both say when to try
// again. The cause is logged by the ingest, once per failure.
func PublishRefused(err error) Outcome {
	if core.CodeOf(err) == core.CodeStorageFull {
		return Outcome{Status: http.StatusInsufficientStorage, Reason: ReasonStorageFull,
			Msg: "the appliance's storage is full, try again later", RetryAfter: retryStorageFull}
	}
	return Outcome{Status: http.StatusServiceUnavailable, Reason: ReasonPublishFailed,
		Msg: "publishing failed, try again later", RetryAfter: retryUnavailable}
}

// OK reports a packet answered 200.
func (o Outcome) OK() bool { return o.Status == http.StatusOK }

// Write answers the outcome in the original protocol's envelope.
func (o Outcome) Write(w http.ResponseWriter) {
	if o.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((o.RetryAfter+time.Second-1)/time.Second), 10))
	}
	WriteAnswer(w, o.Status, o.Msg, o.Result)
}

// DeliveryOrg is the gate every device protocol applies after
// registration: an unassigned or disabled device is answered 202 with the
// reason (its data is not published), a device of another organization
// than the relaying edge adapter's is refused; otherwise the org to
// publish under is returned.
func DeliveryOrg(c *core.Core, dev core.Thing, src Source) (string, Outcome) {
	if !src.mayDeliver(dev) {
		if src.Device.IsZero() {
			return "", reject(http.StatusForbidden, ReasonForeignOrg, "device belongs to another organization")
		}
		return "", reject(http.StatusForbidden, ReasonForeignDevice, "packet of another device than the credentials'")
	}
	if !dev.OrgID.IsZero() && !dev.Enabled {
		return "", Outcome{Status: http.StatusAccepted, Reason: ReasonDisabled, Result: ResultDisabled}
	}
	org, ok := c.OrgNameOf(dev.OrgID)
	if !ok {
		return "", Outcome{Status: http.StatusAccepted, Reason: ReasonNotAssigned, Result: ResultNotAssigned}
	}
	return org, Outcome{}
}
