package update

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/piot-appliance/piot/internal/httpx"
)

// ErrBusy reports an install while another one runs.
var ErrBusy = errors.New("another update is being installed")

// ErrNoSlot reports an appliance that was not started from a slot (a
// direct kernel boot, a development run): it has no inactive slot.
var ErrNoSlot = errors.New("this system was not booted from an A/B slot")

// Service installs bundles into the inactive slot of the running system.
type Service struct {
	// Version and Slot are what runs now; Slot is empty when the system
	// was not booted from a slot.
	Version, Slot string
	Slots         Slots
	// Keys are the trusted public keys (/etc/piot/update-keys.pem).
	Verifier Verifier
	// OutcomeFile keeps the last update's outcome on the data partition.
	OutcomeFile string
	// Tries is the new slot's boot counter (DefaultTries when zero).
	Tries int
	Log   *slog.Logger
	Now   func() time.Time
	// Idle is how long a POST may send nothing before it is cut off
	// (a minute when zero).
	Idle time.Duration
	// RebootAt, when set, says when a reboot is scheduled (zero: none).
	RebootAt func() time.Time

	mu    sync.Mutex
	fetch fetcher
}

func (s *Service) installer() Installer {
	return Installer{Verifier: s.Verifier, Partial: s.Slots.Partial(Other(s.Slot))}
}

// Status is the appliance's update status, with an interrupted install.
func (s *Service) Status() (Status, error) {
	st, err := ReadStatus(s.Version, s.Slot, s.Slots, s.OutcomeFile)
	if err != nil || s.Slot == "" {
		return st, err
	}
	if s.RebootAt != nil {
		if at := s.RebootAt(); !at.IsZero() {
			st.RebootAt = &at
		}
	}
	st.Fetch = s.Progress()
	p, err := s.installer().Pending()
	if err != nil {
		// A state that no longer verifies is not a status error: the next
		// install starts over.
		s.Log.Warn("partial update ignored", "err", err)
		return st, nil
	}
	st.Pending = p
	return st, nil
}

// Install reads a bundle (from offset, to continue an interrupted
// install) into the inactive slot and, when it is complete and verified,
// makes it the slot to try at the next boot. The outcome is recorded,
// except for an interrupted stream, which is no outcome yet.
func (s *Service) Install(r io.Reader, offset int64) (Result, Entry, error) {
	if s.Slot == "" {
		return Result{}, Entry{}, ErrNoSlot
	}
	if !s.mu.TryLock() {
		return Result{}, Entry{}, ErrBusy
	}
	defer s.mu.Unlock()
	start := s.now()
	target := Other(s.Slot)
	res, err := s.installer().Install(r, offset)
	if err != nil {
		var oe *OffsetError
		switch {
		case errors.As(err, &oe), !refused(err) && s.pending():
			// Not an outcome yet: the client continues from where it stopped.
		case refused(err) || errors.Is(err, ErrTruncated):
			s.record(Outcome{Result: ResultRefused, Reason: err.Error(), Slot: target})
		default:
			s.record(Outcome{Result: ResultFailed, Reason: err.Error(), Slot: target})
		}
		return res, Entry{}, err
	}
	tries := s.Tries
	if tries == 0 {
		tries = DefaultTries
	}
	e, err := s.Slots.Commit(target, tries)
	if err != nil {
		s.record(Outcome{Result: ResultFailed, Reason: err.Error(), Version: res.Manifest.Version, Slot: target})
		return res, Entry{}, err
	}
	s.record(Outcome{Result: ResultInstalled, Version: res.Manifest.Version, Slot: target})
	s.Log.Info("update installed", "version", res.Manifest.Version, "slot", target, "entry", e.File,
		"bytes", res.Manifest.Slot.Size, "resumed_at", res.Resumed, "took", s.now().Sub(start).Round(time.Millisecond))
	return res, e, nil
}

// refused reports an error that rejects the bundle itself.
func refused(err error) bool {
	for _, r := range []error{ErrMalformed, ErrUnknownKey, ErrBadSignature, ErrWrongTarget, ErrTooOld, ErrHashMismatch} {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}

func (s *Service) record(o Outcome) {
	o.At = s.now().UTC()
	if err := SaveOutcome(s.OutcomeFile, o); err != nil {
		s.Log.Error("recording the update outcome", "err", err)
	}
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// answer is POST /update's answer: the envelope of the appliance's own
// endpoints plus what a client needs to go on.
type answer struct {
	Error   string `json:"error"`
	Result  string `json:"result"`
	Code    string `json:"code"`
	Version string `json:"version,omitempty"`
	Slot    string `json:"slot,omitempty"`
	// Offset is where to continue an interrupted install from.
	Offset *int64 `json:"offset,omitempty"`
}

// Handler serves GET /update (the status) and POST /update (a bundle as
// the body, streamed; a resumed install names its start with
// Content-Range: bytes <offset>-<last>/<total>, or ?offset=). authorize
// answers and returns false for a caller who may not update the
// appliance; the composition root asks core.
func (s *Service) Handler(authorize func(w http.ResponseWriter, r *http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			httpx.WriteJSON(w, http.StatusMethodNotAllowed, answer{Error: "only GET and POST are allowed", Code: "BAD_INPUT"})
			return
		}
		if !authorize(w, r) {
			return
		}
		if r.Method == http.MethodGet {
			st, err := s.Status()
			if err != nil {
				httpx.WriteJSON(w, http.StatusInternalServerError, answer{Error: err.Error(), Code: "INTERNAL"})
				return
			}
			httpx.WriteJSON(w, http.StatusOK, st)
			return
		}
		offset, err := requestOffset(r)
		if err != nil {
			httpx.WriteJSON(w, http.StatusBadRequest, answer{Error: err.Error(), Code: "BAD_INPUT"})
			return
		}
		body := &idleDeadline{r: r.Body, rc: http.NewResponseController(w), idle: s.idle()}
		res, e, err := s.Install(body, offset)
		_ = body.rc.SetWriteDeadline(time.Now().Add(s.idle()))
		if err == nil {
			httpx.WriteJSON(w, http.StatusOK, answer{Result: "installed into slot " + e.Slot + "; reboot to try it",
				Version: res.Manifest.Version, Slot: e.Slot})
			return
		}
		var oe *OffsetError
		switch {
		case errors.As(err, &oe):
			httpx.WriteJSON(w, http.StatusRequestedRangeNotSatisfiable, answer{Error: err.Error(), Code: "OFFSET", Offset: &oe.Want})
		case errors.Is(err, ErrBusy):
			httpx.WriteJSON(w, http.StatusConflict, answer{Error: err.Error(), Code: "BUSY"})
		case errors.Is(err, ErrNoSlot):
			httpx.WriteJSON(w, http.StatusServiceUnavailable, answer{Error: err.Error(), Code: "UNAVAILABLE"})
		case !refused(err) && s.pending():
			p, _ := s.installer().Pending()
			httpx.WriteJSON(w, http.StatusConflict, answer{Error: err.Error(), Code: "INTERRUPTED", Offset: &p.Offset})
		case refused(err) || errors.Is(err, ErrTruncated):
			httpx.WriteJSON(w, http.StatusUnprocessableEntity, answer{Error: err.Error(), Code: "REFUSED"})
		default:
			s.Log.Error("update failed", "err", err)
			httpx.WriteJSON(w, http.StatusInternalServerError, answer{Error: err.Error(), Code: "INTERNAL"})
		}
	})
}

func (s *Service) pending() bool {
	p, err := s.installer().Pending()
	return p != nil && err == nil
}

// requestOffset reads where the body starts in the bundle.
func requestOffset(r *http.Request) (int64, error) {
	if cr := r.Header.Get("Content-Range"); cr != "" {
		spec, ok := strings.CutPrefix(cr, "bytes ")
		first, _, ok2 := strings.Cut(spec, "-")
		n, err := strconv.ParseInt(first, 10, 64)
		if !ok || !ok2 || err != nil || n < 0 {
			return 0, fmt.Errorf("Content-Range %q: want bytes <offset>-<last>/<total>", cr)
		}
		return n, nil
	}
	if q := r.URL.Query().Get("offset"); q != "" {
		n, err := strconv.ParseInt(q, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("offset %q: want a byte offset", q)
		}
		return n, nil
	}
	return 0, nil
}

func (s *Service) idle() time.Duration {
	if s.Idle > 0 {
		return s.Idle
	}
	return time.Minute
}

// idleDeadline replaces the server's deadline for the whole request, which
// a bundle over a slow link cannot meet, by one for each read: a stalled
// client is cut off (and its install kept to continue) after idle.
type idleDeadline struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
}

func (d *idleDeadline) Read(p []byte) (int, error) {
	_ = d.rc.SetReadDeadline(time.Now().Add(d.idle))
	return d.r.Read(p)
}
