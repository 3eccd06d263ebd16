package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// FerretDB v1 filters `_id` on PostgreSQL with `_jsonb->'_id' @> $1`,
// which its own btree `_id` index cannot answer, so, as on SQLite, every
// lookup by `_id` scans the collection's table. A GIN index on the same
// expression (jsonb_path_ops: containment only, and small) makes it an
// index search. FerretDB lists its indexes in its metadata, so it never
// sees (or drops) this one.
const pgIDIndexSQL = `CREATE INDEX IF NOT EXISTS %s ON %s USING gin ((_jsonb->'_id') jsonb_path_ops)`

// PrepareFerretDB gives every collection of database db on an external
// FerretDB v1 the `_id` index the embedded store creates for itself; only
// FerretDB's backend can take it, so backend is what FerretDB was started
// with: its --postgresql-url (postgres://…) or --sqlite-url (file:…/).
// Collections created later (one history partition a day) need another
// run. It returns the collections it indexed.
func PrepareFerretDB(ctx context.Context, backend, db string) ([]string, error) {
	var colls []string
	var err error
	switch {
	case strings.HasPrefix(backend, "postgres://") || strings.HasPrefix(backend, "postgresql://"):
		colls, err = preparePostgreSQL(ctx, backend, db)
	case strings.HasPrefix(backend, "file:"):
		colls, err = prepareSQLite(ctx, backend, db)
	default:
		return nil, fmt.Errorf("store: backend %q is neither a PostgreSQL URL (postgres://…) nor a SQLite directory (file:…/)", redactURI(backend))
	}
	sort.Strings(colls)
	return colls, err
}

func preparePostgreSQL(ctx context.Context, backend, db string) ([]string, error) {
	conn, err := pgx.Connect(ctx, backend)
	if err != nil {
		return nil, fmt.Errorf("store: connect to %s: %w", redactURI(backend), err)
	}
	defer conn.Close(ctx)
	// FerretDB keeps a database as a schema, with its collections' tables
	// listed in the schema's metadata table.
	rows, _ := conn.Query(ctx, fmt.Sprintf(`SELECT _jsonb->>'_id', _jsonb->>'table' FROM %s`,
		pgx.Identifier{db, "_ferretdb_database_metadata"}.Sanitize()))
	tables, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Coll, Table string }])
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == pgerrcode.UndefinedTable {
			return nil, fmt.Errorf("store: FerretDB has no database %q in %s yet (start piot on it first): %w", db, redactURI(backend), err)
		}
		return nil, fmt.Errorf("store: read FerretDB metadata: %w", err)
	}
	var colls []string
	for _, t := range tables {
		q := fmt.Sprintf(pgIDIndexSQL, pgx.Identifier{idIndexPrefix + t.Table}.Sanitize(), pgx.Identifier{db, t.Table}.Sanitize())
		if _, err := conn.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("store: create _id index on %s: %w", t.Table, err)
		}
		colls = append(colls, t.Coll)
	}
	return colls, nil
}

func prepareSQLite(ctx context.Context, backend, db string) ([]string, error) {
	u, err := url.Parse(backend)
	if err != nil {
		return nil, fmt.Errorf("store: SQLite URL %q: %w", backend, err)
	}
	// "file:data/" is opaque, "file:/var/lib/ferretdb/" has a path.
	dir := u.Opaque
	if dir == "" {
		dir = u.Path
	}
	file := filepath.Join(dir, db+".sqlite")
	if _, err := os.Stat(file); err != nil {
		return nil, fmt.Errorf("store: FerretDB has no database %q in %s yet (start piot on it first): %w", db, dir, err)
	}
	conn, err := openSQLiteFile(file)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return indexSQLiteIDs(ctx, conn)
}
