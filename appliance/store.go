package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/piot-appliance/piot/appliance/config"
	"github.com/piot-appliance/piot/appliance/dataformat"
	"github.com/piot-appliance/piot/services/store"
	"github.com/piot-appliance/piot/tui/backend"
	"go.mongodb.org/mongo-driver/bson"
)

// storeHealthInterval is how often the store is pinged for the broker's
// fail-closed check, which must be cheap because it runs on every ACL check.
const storeHealthInterval = 2 * time.Second

// dataFormat is the format of what this version keeps in the data
// directory (appliance/dataformat). A change to stored data raises it and
// adds a migration from the format before to dataMigrations.
//
// Format 2: the history writes the buckets of the hours not yet settled
// as segments in collections of their own (services/history/hot.go), and
// thing state lives in pages (services/core/statepages.go); format 1
// versions read neither.
const dataFormat = 2

// dataMigrations bring data of older formats to dataFormat.
func dataMigrations(*store.Store) []dataformat.Migration {
	return []dataformat.Migration{{
		From: 1,
		// Format 1 history (the unsettled hours in the day partitions)
		// and thing state (in the things' documents) are read as they
		// are; the format is raised so that a rollback to a format 1
		// version goes back to the snapshot instead of missing the hot
		// hours and the state written since.
		Name:  "history hot hours, thing state pages",
		Apply: func(context.Context) error { return nil },
	}}
}

// snapshotStore takes and restores the snapshots of a data format
// migration: a backup of the whole store, in the console's format.
type snapshotStore struct{ st *store.Store }

func (s snapshotStore) Export(ctx context.Context, w io.Writer) error {
	_, _, err := s.st.Export(ctx, w, backend.BackupFormat, bson.D{{Key: "reason", Value: "before a data format migration"}})
	return err
}

func (s snapshotStore) Restore(ctx context.Context, r io.Reader) error {
	_, err := s.st.Restore(ctx, r, backend.BackupFormat)
	return err
}

// openStore opens the store, applies a restore the console scheduled and
// brings the data to this version's format (or refuses data too new for
// it), before core or anything else loads its contents.
func openStore(ctx context.Context, cfg config.Config, version string, log *slog.Logger) (*store.Store, error) {
	st, err := store.Open(ctx, store.Config{
		DataDir: cfg.DataDir, URI: cfg.Store.URI, ConnectTimeout: cfg.Store.Timeout, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	if err := applyPendingRestore(ctx, st, cfg.DataDir, log); err != nil {
		_ = st.Close(ctx)
		return nil, err
	}
	v := dataformat.Version{Name: version, Current: dataFormat, Migrations: dataMigrations(st), Log: log}
	if err := v.Prepare(ctx, cfg.DataDir, snapshotStore{st}); err != nil {
		_ = st.Close(ctx)
		return nil, err
	}
	mode := "embedded FerretDB (SQLite)"
	if !st.Embedded() {
		mode = "external"
	}
	log.Info("store open", "mode", mode)
	return st, nil
}

// applyPendingRestore replaces the store's contents with a backup the
// console scheduled.
func applyPendingRestore(ctx context.Context, st *store.Store, dataDir string, log *slog.Logger) error {
	path := filepath.Join(dataDir, backend.RestorePendingFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pending restore: %w", err)
	}
	defer f.Close()
	n, err := st.Restore(ctx, f, backend.BackupFormat)
	if err != nil {
		return fmt.Errorf("pending restore %s failed (remove the file to start without it): %w", path, err)
	}
	done := filepath.Join(dataDir, "restore-done-"+time.Now().UTC().Format("20060102T150405Z")+".jsonl")
	if err := os.Rename(path, done); err != nil {
		return fmt.Errorf("pending restore: %w", err)
	}
	log.Warn("store restored from the scheduled backup", "documents", n, "kept_as", done)
	return nil
}

// storeService is the open store under supervision: while it runs it
// keeps healthy current, so that the broker's checks never wait on the
// database, and stopping it closes the store, after everything that
// uses it has stopped.
type storeService struct {
	st      *store.Store
	log     *slog.Logger
	healthy atomic.Bool
	stop    context.CancelFunc
	done    chan struct{}
}

// newStoreService watches st, which has just been opened and answered.
func newStoreService(st *store.Store, log *slog.Logger) *storeService {
	s := &storeService{st: st, log: log}
	s.healthy.Store(true)
	return s
}

func (s *storeService) Name() string { return "store" }

func (s *storeService) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go s.watchHealth(ctx)
	return nil
}

func (s *storeService) watchHealth(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(storeHealthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			err := s.st.Ping(pctx)
			cancel()
			if ok := err == nil; ok != s.healthy.Swap(ok) {
				if ok {
					s.log.Info("store reachable again")
				} else {
					s.log.Error("store not reachable; MQTT access is denied until it is back", "err", err)
				}
			}
		}
	}
}

func (s *storeService) Stop(ctx context.Context) error {
	s.stop()
	<-s.done
	return s.st.Close(ctx)
}

// probe is the store's line on the console dashboard.
func (s *storeService) probe() (bool, string) {
	mode := "embedded"
	if !s.st.Embedded() {
		mode = "external"
	}
	if !s.healthy.Load() {
		return false, mode + ", not reachable"
	}
	return true, mode + ", reachable"
}
