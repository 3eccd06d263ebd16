package protocol

import (
	"errors"
	"io"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/piot-appliance/piot/internal/httpx"
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

// Answer is the original protocol's answer envelope.
type Answer = httpx.Answer

// Reject counts a rejection and answers it.
func (r *Rejections) Reject(w http.ResponseWriter, status int, reason, msg string) {
	r.Add(reason)
	httpx.WriteAnswer(w, status, Answer{Error: msg})
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

// Refused is the outcome of a packet refused with status for reason.
func Refused(status int, reason, msg string) Outcome {
	return Outcome{Status: status, Reason: reason, Msg: msg}
}

// OK reports a packet answered 200.
func (o Outcome) OK() bool { return o.Status == http.StatusOK }

// Write answers the outcome in the original protocol's envelope.
func (o Outcome) Write(w http.ResponseWriter) {
	if o.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((o.RetryAfter+time.Second-1)/time.Second), 10))
	}
	httpx.WriteAnswer(w, o.Status, Answer{Error: o.Msg, Result: o.Result})
}
