package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"

	"go.mongodb.org/mongo-driver/bson"

	// The driver FerretDB itself uses; importing it here only registers
	// the same "sqlite" driver for our second connection.
	_ "modernc.org/sqlite"
)

// FerretDB's SQLite backend filters `_id` with the expression below, but the
// unique `_id` index it creates is on a different expression, so SQLite
// scans the whole table for every lookup (24 ms at 10k documents, 216 ms at
// 100k). An index on FerretDB's own expression turns that into an index
// search. FerretDB keeps its index list in its metadata table, so it never
// sees (or drops) this one.
const (
	ferretMetaTable = "_ferretdb_collections"
	ferretIDExpr    = `_ferretdb_sjson->'$._id'`
	idIndexPrefix   = "piot_idexpr_"
)

// sqlitePath is the file FerretDB keeps the database in.
func (e *embedded) sqlitePath() string {
	return filepath.Join(e.dir, DatabaseName+".sqlite")
}

// openSQLite opens a second connection to FerretDB's file. WAL mode and a
// busy timeout let it coexist with FerretDB's own pool.
func (e *embedded) openSQLite() (*sql.DB, error) {
	return openSQLiteFile(e.sqlitePath())
}

// openSQLiteFile opens an existing FerretDB database file; mode=rw keeps a
// wrong path from leaving an empty database behind.
func openSQLiteFile(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=rw&_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)")
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// ensureIDIndexes creates the `_id` expression index on every collection's
// table. Collections must already exist.
func (e *embedded) ensureIDIndexes(ctx context.Context) error {
	db, err := e.openSQLite()
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = indexSQLiteIDs(ctx, db)
	return err
}

// indexSQLiteIDs creates the `_id` expression index on every collection's
// table of one FerretDB database file and returns the collections.
func indexSQLiteIDs(ctx context.Context, db *sql.DB) ([]string, error) {
	tables, err := collectionTables(ctx, db)
	if err != nil {
		return nil, err
	}
	var colls []string
	for c, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (%s)`, idIndexPrefix+t, t, ferretIDExpr)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("store: create _id index on %s: %w", t, err)
		}
		colls = append(colls, c)
	}
	return colls, nil
}

// collectionTables maps collection names to FerretDB's table names.
func collectionTables(ctx context.Context, db *sql.DB) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT name, table_name FROM %q`, ferretMetaTable))
	if err != nil {
		return nil, fmt.Errorf("store: read FerretDB metadata: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, table string
		if err := rows.Scan(&name, &table); err != nil {
			return nil, fmt.Errorf("store: read FerretDB metadata: %w", err)
		}
		out[name] = table
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read FerretDB metadata: %w", err)
	}
	return out, nil
}

// IDQueryPlan returns SQLite's plan for the `_id` lookup FerretDB runs on a
// collection, so tests and diagnostics can prove the index is used.
func (s *Store) IDQueryPlan(ctx context.Context, coll string) (string, error) {
	if s.embedded == nil {
		return "", fmt.Errorf("store: query plans exist only for the embedded store")
	}
	db, err := s.embedded.openSQLite()
	if err != nil {
		return "", err
	}
	defer db.Close()
	tables, err := collectionTables(ctx, db)
	if err != nil {
		return "", err
	}
	t, ok := tables[coll]
	if !ok {
		return "", fmt.Errorf("store: no collection %q", coll)
	}
	rows, err := db.QueryContext(ctx, fmt.Sprintf(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM %q WHERE %s = ?`, t, ferretIDExpr), `"x"`)
	if err != nil {
		return "", fmt.Errorf("store: explain: %w", err)
	}
	defer rows.Close()
	var plan string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			return "", fmt.Errorf("store: explain: %w", err)
		}
		plan += detail + "\n"
	}
	return plan, rows.Err()
}

// EnsureIDIndex creates a collection if needed and, on the embedded store,
// the `_id` expression index on its table; services that create their own
// collections (history partitions) call it so their `_id` lookups stay
// index searches. On an external server it only creates the collection.
func (s *Store) EnsureIDIndex(ctx context.Context, coll string) error {
	names, err := s.db.ListCollectionNames(ctx, bson.D{{Key: "name", Value: coll}})
	if err != nil {
		return fmt.Errorf("store: list collections: %w", err)
	}
	if len(names) == 0 {
		if err := s.db.CreateCollection(ctx, coll); err != nil && !isNamespaceExists(err) {
			return fmt.Errorf("store: create collection %s: %w", coll, err)
		}
	}
	if s.embedded == nil {
		return nil
	}
	return s.embedded.ensureIDIndexes(ctx)
}
