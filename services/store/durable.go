package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// The embedded store runs SQLite with synchronous=NORMAL: a commit is
// written to the WAL but not fsynced, which survives a crash of the
// process but not a power cut. Under FULL, SQLite's default, every
// FerretDB update statement (a transaction of its own) ended in an fsync:
// writing the history of 1 000 things took 2 000 fsyncs a second. What
// must outlive a power cut is made durable in batches instead: Sync fsyncs
// everything committed so far (a WAL checkpoint syncs the WAL first), and
// every Repo write calls it, so an API change is durable when it is
// answered; the ingest calls it once per flush, before the journal may
// drop what history and state now hold.
const embeddedPragmas = "?_pragma=synchronous(normal)"

// syncer checkpoints the embedded store's WAL on a connection of its own.
type syncer struct {
	mu   sync.Mutex
	path string
	db   *sql.DB // opened on first use: FerretDB creates the file
}

// sync makes every transaction committed before it was called durable.
func (y *syncer) sync(ctx context.Context) error {
	y.mu.Lock()
	defer y.mu.Unlock()
	if y.db == nil {
		db, err := openSQLiteFile(y.path)
		if err != nil {
			return err
		}
		y.db = db
	}
	// PASSIVE never waits for readers or writers. It reports busy when
	// another checkpoint runs, whose own WAL sync may have started before
	// our commits: then it is tried again, and at the end a FULL one waits.
	for try := 0; ; try++ {
		mode := "PASSIVE"
		if try == 5 {
			mode = "FULL"
		}
		var busy, logFrames, done int
		if err := y.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &logFrames, &done); err != nil {
			return fmt.Errorf("store: sync: %w", err)
		}
		if busy == 0 {
			return nil
		}
		if try == 5 {
			return fmt.Errorf("store: sync: the WAL checkpoint stayed busy")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: sync: %w", ctx.Err())
		case <-time.After(time.Duration(try+1) * 5 * time.Millisecond):
		}
	}
}

func (y *syncer) close() {
	y.mu.Lock()
	defer y.mu.Unlock()
	if y.db != nil {
		_ = y.db.Close()
		y.db = nil
	}
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
