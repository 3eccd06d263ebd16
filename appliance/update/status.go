package update

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/piot-appliance/piot/internal/fileutil"
)

// Outcomes of an update, as Outcome.Result.
const (
	ResultInstalled  = "installed"   // written and committed, waiting for the reboot into it
	ResultRefused    = "refused"     // not written: signature, key, target, version, format
	ResultFailed     = "failed"      // the write failed or the image did not hash right
	ResultGood       = "good"        // the new slot booted and was marked good
	ResultRolledBack = "rolled-back" // the new slot was not marked good; the old one runs again
)

// Outcome is the last update's result, kept on the data partition so
// that both slots see it: the old system after a rollback says why.
type Outcome struct {
	Result string `json:"result"`
	Reason string `json:"reason,omitempty"`
	// Detail is what the failed version last wrote (admins only: it may
	// name paths or settings); Reason is what anybody may read (/readyz).
	Detail  string    `json:"detail,omitempty"`
	Version string    `json:"version,omitempty"`
	Slot    string    `json:"slot,omitempty"`
	At      time.Time `json:"at"`
}

// Status is what the console, GraphQL (system { version slot
// other_slot_version last_update }), piot admin status and the metrics
// show about updates.
type Status struct {
	Version string `json:"version"`
	// Slot is the running slot, empty when the system was not started
	// from a slot (a direct kernel boot, a development run).
	Slot string `json:"slot,omitempty"`
	// OtherSlotVersion is the version in the other slot, empty when it is
	// empty; OtherSlotState says whether it is good, being tried or bad.
	OtherSlotVersion string `json:"other_slot_version,omitempty"`
	OtherSlotState   string `json:"other_slot_state,omitempty"`
	// LastUpdate is nil before the first update.
	LastUpdate *Outcome `json:"last_update,omitempty"`
	// Pending describes an install that was interrupted and can continue.
	Pending *PendingInstall `json:"pending,omitempty"`
	// Fetch is a download the appliance makes itself, running or the
	// last one; nil when there was none since start.
	Fetch *FetchProgress `json:"fetch,omitempty"`
	// RebootAt is when piot init reboots into what was installed; nil
	// when no reboot is scheduled.
	RebootAt *time.Time `json:"reboot_at,omitempty"`
}

// PendingInstall is an interrupted install.
type PendingInstall struct {
	Version string `json:"version"`
	// Digest names the bundle (Header.Digest): a client continues only
	// the install of the bundle it has.
	Digest string `json:"digest"`
	// Offset is the bundle offset to send the rest from, Size the
	// bundle's.
	Offset int64 `json:"offset"`
	Size   int64 `json:"size"`
}

// Entry states, as Status.OtherSlotState.
const (
	StateGood   = "good"
	StateTrying = "trying"
	StateBad    = "bad"
)

// State names an entry's boot assessment.
func (e Entry) State() string {
	switch {
	case e.Bad():
		return StateBad
	case e.Counting:
		return StateTrying
	default:
		return StateGood
	}
}

// SaveOutcome records the last update's outcome in path.
func SaveOutcome(path string, o Outcome) error {
	data, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if err := fileutil.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("update: saving the outcome: %w", err)
	}
	return nil
}

// LoadOutcome reads the outcome SaveOutcome wrote; nil when there is none.
func LoadOutcome(path string) (*Outcome, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	var o Outcome
	if err := json.Unmarshal(data, &o); err != nil {
		return nil, fmt.Errorf("update: outcome %s: %w", path, err)
	}
	return &o, nil
}

// ReadStatus puts together the status of an appliance that runs version
// from slot (empty: not from a slot), its slots in s and the outcome file.
func ReadStatus(version, slot string, s Slots, outcome string) (Status, error) {
	st := Status{Version: version, Slot: slot}
	var err error
	if st.LastUpdate, err = LoadOutcome(outcome); err != nil {
		return st, err
	}
	if slot == "" {
		return st, nil
	}
	entries, err := s.Entries()
	if err != nil {
		return st, err
	}
	if e, ok := entries[Other(slot)]; ok {
		st.OtherSlotState = e.State()
		// A slot that cannot be read is shown as such, not as a status
		// that cannot be read.
		if st.OtherSlotVersion, err = SlotVersion(s.Dir + "/" + e.File); err != nil {
			st.OtherSlotVersion = "unknown"
		}
	}
	return st, nil
}

// Notice is what anybody may read about the last update (/readyz): that
// it was rolled back, to which version and why; "" otherwise.
func Notice(outcome string) string {
	o, err := LoadOutcome(outcome)
	if err != nil || o == nil || o.Result != ResultRolledBack {
		return ""
	}
	return fmt.Sprintf("update to %s rolled back at %s: %s", o.Version, o.At.Format(time.RFC3339), o.Reason)
}
