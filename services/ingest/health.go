package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/piot-appliance/piot/internal/journal"
	"github.com/piot-appliance/piot/services/core"
)

// Stages whose writes can fail, the keys of WriteFailures.
const (
	StageJournal = "journal" // the write-ahead journal on the data disk
	StageHistory = "history" // points into the store's history
	StageState   = "state"   // thing state into the store
)

// failing remembers whether a stage's writes fail, logging the changes
// only: a full disk fails every write, once a second or more, for as
// long as it lasts.
type failing struct {
	what string
	log  *slog.Logger
	err  atomic.Pointer[error]
}

func (f *failing) set(err error) {
	if err == nil {
		if f.err.Swap(nil) != nil {
			f.log.Info(f.what + " works again")
		}
		return
	}
	if f.err.Swap(&err) == nil {
		f.log.Error(f.what+" fails; retrying", "err", err)
	}
}

func (f *failing) get() error {
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Health is why the ingest cannot store what arrives now, or nil: the
// journal cannot write, or the store does not take history or thing
// state. It clears by itself when writing works again.
func (i *Ingest) Health() error {
	if err := i.j.Err(); err != nil {
		return fmt.Errorf("journal cannot write: %w", err)
	}
	if err := i.histFail.get(); err != nil {
		return fmt.Errorf("history cannot be stored: %w", err)
	}
	if err := i.stateFail.get(); err != nil {
		return fmt.Errorf("thing state cannot be stored: %w", err)
	}
	return nil
}

// WriteFailures says, per stage, whether its writes fail now.
func (i *Ingest) WriteFailures() map[string]bool {
	return map[string]bool{
		StageJournal: i.j.Err() != nil,
		StageHistory: i.histFail.get() != nil,
		StageState:   i.stateFail.get() != nil,
	}
}

// refusal is the error of a message that cannot be stored now: the
// client is told (negative PUBACK, 507/503) and may send it again later.
func refusal(cause error) error {
	code := core.CodeUnavailable
	if core.StorageFull(cause) {
		code = core.CodeStorageFull
	}
	return &core.Error{Code: code, Msg: "the appliance cannot store messages now", Err: cause}
}

// writeRefusal turns a journal append error into a refusal when it is a
// write failure (rather than a bad record or a closed journal).
func writeRefusal(err error) error {
	if errors.Is(err, journal.ErrClosed) || errors.Is(err, journal.ErrTooLarge) || errors.Is(err, journal.ErrEmptyRecord) {
		return err
	}
	return refusal(err)
}
