package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
)

// serverURI opens an embedded store and returns the URI of its FerretDB
// with path and query appended: a real server for the external-store code.
func serverURI(t *testing.T, pathAndQuery string) string {
	t.Helper()
	s := openTest(t, t.TempDir())
	return strings.TrimSuffix(s.embedded.uri, "/") + "/" + pathAndQuery
}

func openURI(t *testing.T, uri string) (*Store, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, Config{URI: uri, ConnectTimeout: 5 * time.Second})
	if err == nil {
		t.Cleanup(func() { _ = s.Close(context.Background()) })
	}
	return s, err
}

// The database in the URI is the one used (issue 11: it was always piot).
func TestURIDatabaseIsUsed(t *testing.T) {
	for _, tc := range []struct{ path, want string }{{"farm", "farm"}, {"", DatabaseName}, {"?appName=x", DatabaseName}} {
		s, err := openURI(t, serverURI(t, tc.path))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Database().Name(); got != tc.want {
			t.Errorf("URI path %q: database %q, want %q", tc.path, got, tc.want)
		}
		ctx := context.Background()
		if err := s.Orgs.Insert(ctx, &Org{ID: primitive.NewObjectID(), Name: "farm"}); err != nil {
			t.Fatal(err)
		}
		// The server's embedded store has made "piot" already.
		for _, db := range []string{tc.want, DatabaseName} {
			n, err := s.client.Database(db).Collection(CollOrgs).CountDocuments(ctx, bson.D{{Key: "name", Value: "farm"}})
			want := int64(0)
			if db == tc.want {
				want = 1
			}
			if err != nil || n != want {
				t.Errorf("URI path %q: %d orgs in %s, want %d (%v)", tc.path, n, db, want, err)
			}
		}
	}
}

// FerretDB v1 refuses the driver's default SCRAM; the error says what to
// do (issue 11), and the password stays out of it.
func TestCredentialsNeedPLAIN(t *testing.T) {
	uri := serverURI(t, "")
	withCreds := strings.Replace(uri, "mongodb://", "mongodb://piot:secret@", 1)
	_, err := openURI(t, withCreds)
	if err == nil || !strings.Contains(err.Error(), "add authMechanism=PLAIN to the URI") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("SCRAM login: %v", err)
	}
	if _, err := openURI(t, withCreds+"?authMechanism=PLAIN"); err != nil {
		t.Fatalf("PLAIN login: %v", err)
	}
}

// Duplicates are recognised, and the index named, from what each backend
// really answers (messages as FerretDB v1.24.2 and MongoDB 7 give them).
func TestDuplicateFromEveryBackend(t *testing.T) {
	ferretUpdate := func(backend string) error {
		return mongo.CommandError{Code: 1, Name: "InternalError", Message: "[msg_update.go:133 handler.(*Handler).updateDocument] " + backend}
	}
	insert := func(msg string) error {
		return mongo.WriteException{WriteErrors: mongo.WriteErrors{{Code: 11000, Message: msg}}}
	}
	cases := []struct {
		name, coll string
		err        error
		index      string
	}{
		{"FerretDB-PostgreSQL update, name", CollOrgs, ferretUpdate(`ERROR: duplicate key value violates unique constraint "orgs_ed21121e_name_unique_7ecca4b8_idx" (SQLSTATE 23505)`), IndexName},
		{"FerretDB-PostgreSQL update, MQTT username", CollOrgs, ferretUpdate(`ERROR: duplicate key value violates unique constraint "orgs_ed21121e_mqtt_username_uniq_c3eda24a_idx" (SQLSTATE 23505)`), IndexMQTTUsername},
		{"FerretDB-PostgreSQL update, piot id", CollThings, ferretUpdate(`ERROR: duplicate key value violates unique constraint "things_9e7a4f34_piot_id_unique_cc5f92a7_idx" (SQLSTATE 23505)`), IndexPiotID},
		{"FerretDB-PostgreSQL update, email", CollUsers, ferretUpdate(`ERROR: duplicate key value violates unique constraint "users_5e7cc513_email_unique_fdc48a5f_idx" (SQLSTATE 23505)`), IndexEmail},
		{"FerretDB-SQLite update, MQTT username", CollOrgs, ferretUpdate(`constraint failed: UNIQUE constraint failed: index 'orgs_ed21121e_mqtt_username_unique' (2067)`), IndexMQTTUsername},
		{"FerretDB-SQLite update, piot id", CollThings, ferretUpdate(`constraint failed: UNIQUE constraint failed: index 'things_9e7a4f34_piot_id_unique' (2067)`), IndexPiotID},
		{"FerretDB insert", CollOrgs, insert("E11000 duplicate key error collection: piot.orgs"), ""},
		{"MongoDB insert", CollThings, insert(`E11000 duplicate key error collection: piot.things index: name_unique dup key: { name: "a" }`), IndexName},
		{"MongoDB update", CollThings, mongo.CommandError{Code: 11000, Message: `E11000 duplicate key error collection: farm.things index: piot_id_unique dup key: { piot_id: "X" }`}, IndexPiotID},
	}
	for _, tc := range cases {
		err := wrap("update", tc.coll, tc.err)
		if !errors.Is(err, ErrDuplicate) {
			t.Errorf("%s: not a duplicate: %v", tc.name, err)
			continue
		}
		if got := DuplicateIndex(err); got != tc.index {
			t.Errorf("%s: index %q, want %q", tc.name, got, tc.index)
		}
	}
	other := ferretUpdate(`ERROR: null value in column "x" violates not-null constraint (SQLSTATE 23502)`)
	if err := wrap("update", CollOrgs, other); errors.Is(err, ErrDuplicate) {
		t.Errorf("another constraint taken for a duplicate: %v", err)
	}
}

// On the embedded store (the SQLite backend) updates name the index too.
func TestDuplicateUpdateNamesIndex(t *testing.T) {
	s := openTest(t, t.TempDir())
	ctx := context.Background()
	a := Org{ID: primitive.NewObjectID(), Name: "a", MQTTUsername: "ma"}
	b := Org{ID: primitive.NewObjectID(), Name: "b", MQTTUsername: "mb"}
	ta := Thing{ID: primitive.NewObjectID(), Name: "ta", PiotID: "CHIP-A"}
	tb := Thing{ID: primitive.NewObjectID(), Name: "tb", PiotID: "CHIP-B"}
	for _, err := range []error{s.Orgs.Insert(ctx, &a), s.Orgs.Insert(ctx, &b), s.Things.Insert(ctx, &ta), s.Things.Insert(ctx, &tb)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		err   error
		index string
	}{
		{s.Orgs.Set(ctx, b.ID, bson.D{{Key: "name", Value: "a"}}), IndexName},
		{s.Orgs.Set(ctx, b.ID, bson.D{{Key: "mqtt_username", Value: "ma"}}), IndexMQTTUsername},
		{s.Things.Set(ctx, tb.ID, bson.D{{Key: "piot_id", Value: "CHIP-A"}}), IndexPiotID},
		{s.Things.Set(ctx, tb.ID, bson.D{{Key: "name", Value: "ta"}}), IndexName},
	} {
		if !errors.Is(tc.err, ErrDuplicate) || DuplicateIndex(tc.err) != tc.index {
			t.Errorf("want a duplicate on %s, got %v", tc.index, tc.err)
		}
	}
}

// piot store prepare gives an external FerretDB-on-SQLite's tables the
// `_id` index the embedded store makes for itself, while FerretDB runs.
func TestPrepareFerretDBSQLite(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	ctx := context.Background()
	db, err := s.embedded.openSQLite()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dropIDIndexes(t, db)
	if plan, _ := s.IDQueryPlan(ctx, CollThings); strings.Contains(plan, "USING INDEX") {
		t.Fatalf("index still there:\n%s", plan)
	}
	colls, err := PrepareFerretDB(ctx, "file:"+filepath.Join(dir, "store")+"/", DatabaseName)
	if err != nil {
		t.Fatal(err)
	}
	if want := collections; len(colls) != len(want) {
		t.Fatalf("prepared %v, want %v", colls, want)
	}
	for _, c := range colls {
		if plan, err := s.IDQueryPlan(ctx, c); err != nil || !strings.Contains(plan, "USING INDEX "+idIndexPrefix) {
			t.Errorf("%s: %v\n%s", c, err, plan)
		}
	}
	if _, err := PrepareFerretDB(ctx, "file:"+filepath.Join(dir, "store")+"/", "farm"); err == nil {
		t.Error("prepared a database that does not exist")
	}
}

func dropIDIndexes(t *testing.T, db *sql.DB) {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE ?`, idIndexPrefix+"%")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		if _, err := db.Exec(fmt.Sprintf(`DROP INDEX %q`, n)); err != nil {
			t.Fatal(err)
		}
	}
}
