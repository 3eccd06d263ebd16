package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// FerretDB v1.24 creates a collection with two statements, CREATE TABLE
// and then the row of its metadata table, and drops one the other way
// round, each committed on its own (backends/sqlite/metadata/registry.go).
// A process killed between the two leaves a table that FerretDB does not
// know; creating the collection again then fails for good ("table …
// already exists"), since its table name is derived from the collection's
// name. The kill -9 test of ingest hit it with the history's watermark
// collection. Before FerretDB opens the file, such tables are dropped: one
// left by a create holds nothing, one left by a drop belonged to a dropped
// collection.
func repairOrphanTables(ctx context.Context, path string, log *slog.Logger) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil // a new store
	}
	db, err := openSQLiteFile(path)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?`, ferretMetaTable).Scan(new(string)); errors.Is(err, sql.ErrNoRows) {
		return nil // FerretDB has not set the file up yet
	} else if err != nil {
		return fmt.Errorf("store: check FerretDB metadata: %w", err)
	}
	known := map[string]bool{}
	tables, err := collectionTables(ctx, db)
	if err != nil {
		return err
	}
	for _, t := range tables {
		known[t] = true
	}
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		return fmt.Errorf("store: list tables: %w", err)
	}
	var orphans []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return fmt.Errorf("store: list tables: %w", err)
		}
		if !known[name] && !strings.HasPrefix(name, "_ferretdb_") && !strings.HasPrefix(name, "sqlite_") {
			orphans = append(orphans, name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: list tables: %w", err)
	}
	for _, name := range orphans {
		var n int64
		if err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM %q`, name)).Scan(&n); err != nil {
			return fmt.Errorf("store: count %s: %w", name, err)
		}
		if _, err := db.ExecContext(ctx, fmt.Sprintf(`DROP TABLE %q`, name)); err != nil {
			return fmt.Errorf("store: drop orphaned table %s: %w", name, err)
		}
		log.Warn("store: dropped a table FerretDB had lost track of (a crash while it created or dropped a collection)", "table", name, "rows", n)
	}
	return nil
}
