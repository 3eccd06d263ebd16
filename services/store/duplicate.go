package store

import (
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"

	"go.mongodb.org/mongo-driver/mongo"
)

// Unique index names, as the schema creates them; DuplicateError.Index
// says which one refused a write.
const (
	IndexEmail        = "email_unique"         // users.email
	IndexName         = "name_unique"          // orgs.name, things.name
	IndexMQTTUsername = "mqtt_username_unique" // orgs.mqtt_username
	IndexMembership   = "org_user_unique"      // orgusers.(org_id, user_id)
	IndexPiotID       = "piot_id_unique"       // things.piot_id
)

// DuplicateError is a write refused by a unique index. It matches
// ErrDuplicate with errors.Is.
type DuplicateError struct {
	Collection string
	// Index is the schema's name of the index (IndexEmail, ...); empty
	// when the server did not say, as FerretDB does not on inserts (where
	// each collection has one candidate only).
	Index string
	err   error
}

func (e *DuplicateError) Error() string {
	if e.Index == "" {
		return fmt.Sprintf("%v: %v", ErrDuplicate, e.err)
	}
	return fmt.Sprintf("%v (%s.%s): %v", ErrDuplicate, e.Collection, e.Index, e.err)
}

func (e *DuplicateError) Unwrap() []error { return []error{ErrDuplicate, e.err} }

// DuplicateIndex returns the unique index that refused a write, or "" when
// err is no duplicate or the server did not name the index.
func DuplicateIndex(err error) string {
	var d *DuplicateError
	if errors.As(err, &d) {
		return d.Index
	}
	return ""
}

// Each backend reports a unique violation in its own way, and FerretDB v1
// passes its backend's error on as an InternalError (code 1) for updates:
//   - MongoDB, and FerretDB on inserts: code 11000, "E11000 duplicate key
//     error collection: piot.things index: name_unique dup key: ..." (FerretDB
//     leaves the index out);
//   - FerretDB on SQLite: "UNIQUE constraint failed: index
//     'things_9e7a4f34_name_unique' (2067)", SQLITE_CONSTRAINT_UNIQUE;
//   - FerretDB on PostgreSQL: `duplicate key value violates unique
//     constraint "things_9e7a4f34_name_unique_7ecca4b8_idx" (SQLSTATE 23505)`.
var (
	mongoIndexRe  = regexp.MustCompile(`index: (\S+) dup key`)
	sqliteIndexRe = regexp.MustCompile(`UNIQUE constraint failed: index '([^']+)'`)
	pgIndexRe     = regexp.MustCompile(`violates unique constraint "([^"]+)"`)
)

// asDuplicate recognises a unique-index violation from any supported
// backend and names the schema index behind it.
func asDuplicate(coll string, err error) (*DuplicateError, bool) {
	msg := err.Error()
	var re *regexp.Regexp
	switch {
	case mongo.IsDuplicateKeyError(err):
		re = mongoIndexRe
	case strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "(2067)"):
		re = sqliteIndexRe
	case strings.Contains(msg, "SQLSTATE 23505"):
		re = pgIndexRe
	default:
		return nil, false
	}
	d := &DuplicateError{Collection: coll, err: err}
	if m := re.FindStringSubmatch(msg); m != nil {
		d.Index = schemaIndex(coll, m[1])
	}
	return d, true
}

// schemaIndex maps the name a backend gave an index to the schema's name.
// MongoDB keeps the name; FerretDB on SQLite names it
// "<table>_<name>"; FerretDB on PostgreSQL "<table>_<name cut to 18
// bytes>_<FNV-32a of name>_idx", to fit PostgreSQL's 63-byte limit.
func schemaIndex(coll, backendName string) string {
	for _, ix := range schema {
		if ix.coll != coll {
			continue
		}
		if backendName == ix.name || strings.HasSuffix(backendName, "_"+ix.name) || strings.HasSuffix(backendName, pgIndexSuffix(ix.name)) {
			return ix.name
		}
	}
	return ""
}

func pgIndexSuffix(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	return fmt.Sprintf("_%s_%08x_idx", name[:min(len(name), 18)], h.Sum32())
}
