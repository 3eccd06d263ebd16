package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
)

// The embedded store runs SQLite with synchronous=NORMAL: a commit is
// written to the WAL but not fsynced, which survives a crash of the
// process but not a power cut. Under FULL, SQLite's default, every
// FerretDB update statement (a transaction of its own) ended in an fsync:
// writing the history of 1 000 things took 2 000 fsyncs a second. What
// must outlive a power cut is made durable in batches instead: Sync fsyncs
// the WAL, and with it everything committed so far, and
// every Repo write calls it, so an API change is durable when it is
// answered; the ingest calls it once per flush, before the journal may
// drop what history and state now hold.
const embeddedPragmas = "?_pragma=synchronous(normal)"

// syncer fsyncs the embedded store's WAL, which is what synchronous=FULL
// does at every commit: the commits written to it so far survive a power
// cut (frames a checkpoint already moved into the database file were
// synced there before the WAL could be reused).
type syncer struct {
	mu   sync.Mutex
	path string   // the WAL: the database file's name and "-wal"
	wal  *os.File // read-only; fsync needs no more
}

// sync makes every transaction committed before it was called durable.
func (y *syncer) sync(context.Context) error {
	y.mu.Lock()
	defer y.mu.Unlock()
	// SQLite removes the WAL when its last connection closes (after a
	// checkpoint that synced the database file) and makes a new one with
	// the next: a file kept open from before would be the old one.
	cur, err := os.Stat(y.path)
	if errors.Is(err, fs.ErrNotExist) {
		y.closeWAL()
		return nil // nothing committed is only in a WAL
	}
	if err != nil {
		return fmt.Errorf("store: sync: %w", err)
	}
	if y.wal != nil {
		if held, err := y.wal.Stat(); err != nil || !os.SameFile(held, cur) {
			y.closeWAL()
		}
	}
	if y.wal == nil {
		if y.wal, err = os.Open(y.path); err != nil {
			return fmt.Errorf("store: sync: %w", err)
		}
	}
	if err := y.wal.Sync(); err != nil {
		return fmt.Errorf("store: sync: %w", err)
	}
	return nil
}

func (y *syncer) closeWAL() {
	if y.wal != nil {
		_ = y.wal.Close()
		y.wal = nil
	}
}

func (y *syncer) close() {
	y.mu.Lock()
	defer y.mu.Unlock()
	y.closeWAL()
}

// Sync makes every write the store acknowledged so far durable against a
// power cut. External stores answer only what is durable by their own
// settings, so it does nothing there.
func (s *Store) Sync(ctx context.Context) error {
	if s.embedded == nil {
		return nil
	}
	return s.embedded.syncer.sync(ctx)
}
