// Package store owns the appliance's database: it runs FerretDB embedded
// (SQLite files under the data directory) unless an external MongoDB URI is
// configured, and exposes typed repositories over the official mongo-driver.
//
// FerretDB on SQLite only pushes `_id` equality filters down to SQLite, so
// the repositories offer lookups by `_id` only; secondary lookups belong in
// the callers' in-memory indexes.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/x/mongo/driver/connstring"
)

// DatabaseName is the database the repositories live in, as in the
// original PIOT server: always on the embedded store, and on an external
// one whose URI names no database.
const DatabaseName = "piot"

// Config says where the data lives.
type Config struct {
	// DataDir is the appliance data directory; the embedded store keeps its
	// files in DataDir/store.
	DataDir string
	// URI of an external MongoDB-compatible server; empty runs FerretDB
	// embedded. Its path names the database (DatabaseName when empty).
	URI string
	// ConnectTimeout bounds the initial connection and ping.
	ConnectTimeout time.Duration
	Logger         *slog.Logger
}

// Store is an open database with its repositories.
type Store struct {
	client *mongo.Client
	// health has a connection of its own for Ping, so that a pool
	// exhausted by heavy queries does not look like a store outage (the
	// broker denies MQTT access while the store is unreachable).
	health   *mongo.Client
	db       *mongo.Database
	log      *slog.Logger
	embedded *embedded
	ops      *opStats

	Users   Repo[User]
	Orgs    Repo[Org]
	Members Repo[Membership]
	Things  Repo[Thing]
	Revoked Repo[RevokedToken]
	Audit   Repo[AuditEntry]
}

// Open starts the embedded engine if needed, connects, and makes sure the
// collections and indexes exist. The caller must Close the store.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	s := &Store{log: log, ops: newOpStats()}

	uri := cfg.URI
	if uri == "" {
		if cfg.DataDir == "" {
			return nil, errors.New("store: data directory is required for the embedded store")
		}
		e, err := startEmbedded(filepath.Join(cfg.DataDir, "store"), log)
		if err != nil {
			return nil, err
		}
		s.embedded = e
		uri = e.uri
	}

	cctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	client, err := mongo.Connect(cctx, options.Client().
		ApplyURI(uri).
		SetServerSelectionTimeout(cfg.ConnectTimeout).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetAppName("piot").
		SetMonitor(s.ops.monitor()))
	if err != nil {
		s.closeEmbedded()
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	s.client = client
	if err := client.Ping(cctx, nil); err != nil {
		_ = s.Close(context.Background())
		if strings.Contains(err.Error(), "Unsupported authentication mechanism") {
			// FerretDB v1 knows no SCRAM, the driver's default whenever
			// the URI has credentials.
			return nil, fmt.Errorf("store: %s refused the login: FerretDB v1 accepts only PLAIN authentication: add authMechanism=PLAIN to the URI (mongodb://user:password@host:port/db?authMechanism=PLAIN): %w", redactURI(uri), err)
		}
		return nil, fmt.Errorf("store: %s not reachable: %w", redactURI(uri), err)
	}
	s.health, err = mongo.Connect(cctx, options.Client().
		ApplyURI(uri).
		SetServerSelectionTimeout(cfg.ConnectTimeout).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetAppName("piot-health").
		SetMaxPoolSize(1))
	if err != nil {
		_ = s.Close(context.Background())
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	s.db = client.Database(DatabaseFromURI(uri))
	s.Users = newRepo[User](s.db.Collection(CollUsers), s.Sync)
	s.Orgs = newRepo[Org](s.db.Collection(CollOrgs), s.Sync)
	s.Members = newRepo[Membership](s.db.Collection(CollMembers), s.Sync)
	s.Things = newRepo[Thing](s.db.Collection(CollThings), s.Sync)
	s.Revoked = newRepo[RevokedToken](s.db.Collection(CollRevokedTokens), s.Sync)
	s.Audit = newRepo[AuditEntry](s.db.Collection(CollAudit), s.Sync)

	if err := s.ensureSchema(cctx); err != nil {
		_ = s.Close(context.Background())
		return nil, err
	}
	if s.embedded != nil {
		if err := s.embedded.ensureIDIndexes(cctx); err != nil {
			_ = s.Close(context.Background())
			return nil, err
		}
		s.embedded.restrictFiles()
	}
	return s, nil
}

// Embedded reports whether the store runs FerretDB in-process.
func (s *Store) Embedded() bool { return s.embedded != nil }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.health.Ping(ctx, nil); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Database gives access to the raw database for services that own their
// own collections (history, journal checkpoints).
func (s *Store) Database() *mongo.Database { return s.db }

// Close disconnects and stops the embedded engine.
func (s *Store) Close(ctx context.Context) error {
	var err error
	for _, c := range []*mongo.Client{s.health, s.client} {
		if c == nil {
			continue
		}
		if e := c.Disconnect(ctx); e != nil && err == nil {
			err = fmt.Errorf("store: disconnect: %w", e)
		}
	}
	s.closeEmbedded()
	return err
}

func (s *Store) closeEmbedded() {
	if s.embedded != nil {
		s.embedded.syncer.close()
		s.embedded.stop()
	}
}

// index describes one secondary index. Unique indexes enforce the
// invariants; FerretDB on SQLite never uses them for queries.
type index struct {
	coll   string
	name   string
	keys   bson.D
	unique bool
	// sparse leaves documents without the field out of a unique index.
	// FerretDB ignores the option but SQLite treats the missing field as
	// NULL, and NULLs never collide, so both engines agree.
	sparse bool
}

// collections are made at start, so that their _id indexes exist before
// the first lookup.
var collections = []string{CollUsers, CollOrgs, CollMembers, CollThings, CollRevokedTokens, CollAudit, CollThingState}

var schema = []index{
	{coll: CollUsers, name: IndexEmail, keys: bson.D{{Key: "email", Value: 1}}, unique: true},
	{coll: CollOrgs, name: IndexName, keys: bson.D{{Key: "name", Value: 1}}, unique: true},
	{coll: CollOrgs, name: IndexMQTTUsername, keys: bson.D{{Key: "mqtt_username", Value: 1}}, unique: true, sparse: true},
	{coll: CollMembers, name: IndexMembership, keys: bson.D{{Key: "org_id", Value: 1}, {Key: "user_id", Value: 1}}, unique: true},
	{coll: CollThings, name: IndexName, keys: bson.D{{Key: "name", Value: 1}}, unique: true},
	{coll: CollThings, name: IndexPiotID, keys: bson.D{{Key: "piot_id", Value: 1}}, unique: true, sparse: true},
}

func (s *Store) ensureSchema(ctx context.Context) error {
	existing, err := s.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("store: list collections: %w", err)
	}
	have := map[string]bool{}
	for _, n := range existing {
		have[n] = true
	}
	for _, c := range collections {
		if have[c] {
			continue
		}
		if err := s.db.CreateCollection(ctx, c); err != nil && !isNamespaceExists(err) {
			return fmt.Errorf("store: create collection %s: %w", c, err)
		}
	}
	for _, ix := range schema {
		opts := options.Index().SetName(ix.name).SetUnique(ix.unique)
		if ix.sparse {
			opts.SetSparse(true)
		}
		_, err := s.db.Collection(ix.coll).Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.keys, Options: opts})
		if err != nil {
			return fmt.Errorf("store: create index %s.%s: %w", ix.coll, ix.name, err)
		}
	}
	return nil
}

// DatabaseFromURI is the database a store URI names, DatabaseName when
// none; a URI that does not parse fails in mongo.Connect first.
func DatabaseFromURI(uri string) string {
	if cs, err := connstring.Parse(uri); err == nil && cs.Database != "" {
		return cs.Database
	}
	return DatabaseName
}

func isNamespaceExists(err error) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.Code == 48
}

// embedded is FerretDB running in this process.
type embedded struct {
	dir    string
	sock   string
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
	log    *slog.Logger
	syncer syncer
}

func startEmbedded(dir string, log *slog.Logger) (*embedded, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// Probe writability up front: SQLite would otherwise fail later with a
	// less helpful message.
	probe := filepath.Join(dir, ".probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		return nil, fmt.Errorf("store: data directory %s is not writable: %w", dir, err)
	}
	_ = os.Remove(probe)

	rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
	err := repairOrphanTables(rctx, filepath.Join(dir, DatabaseName+".sqlite"), log)
	rcancel()
	if err != nil {
		return nil, err
	}
	listener := ferretdb.ListenerConfig{}
	sock, err := socketPath(dir)
	if err != nil {
		return nil, err
	}
	listener.Unix = sock
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  listener,
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/" + embeddedPragmas,
		Logger:    slog.New(minLevel{h: log.Handler(), min: slog.LevelError}).With("component", "ferretdb"),
	})
	if err != nil {
		return nil, fmt.Errorf("store: start embedded FerretDB: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &embedded{dir: dir, sock: sock, cancel: cancel, done: make(chan struct{}), log: log}
	e.syncer.path = e.sqlitePath() + "-wal"
	go func() {
		defer close(e.done)
		if err := f.Run(ctx); err != nil {
			log.Error("embedded FerretDB stopped", "err", err)
		}
	}()
	e.uri = f.MongoDBURI()
	return e, nil
}

func (e *embedded) stop() {
	e.cancel()
	select {
	case <-e.done:
	case <-time.After(10 * time.Second):
		e.log.Warn("embedded FerretDB did not stop in time")
	}
	_ = os.Remove(e.sock)
	if filepath.Dir(e.sock) != e.dir {
		_ = os.Remove(filepath.Dir(e.sock))
	}
}

// socketPath picks where FerretDB listens: a unix socket, so that only this
// user can reach the database. The mongo-driver lowercases socket paths and
// sockets are limited to ~108 bytes, so a data directory with capitals or a
// long path gets a private (0700) directory of its own under the temp dir.
func socketPath(dir string) (string, error) {
	sock := filepath.Join(dir, "ferretdb.sock")
	if len(sock) < 100 && strings.ToLower(sock) == sock {
		_ = os.Remove(sock)
		return sock, nil
	}
	d, err := os.MkdirTemp("", "piot-store-")
	if err != nil {
		return "", fmt.Errorf("store: socket directory: %w", err)
	}
	d = strings.ToLower(d)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", fmt.Errorf("store: socket directory: %w", err)
	}
	return filepath.Join(d, "ferretdb.sock"), nil
}

// restrictFiles makes the SQLite files private; SQLite creates them with
// the process umask.
func (e *embedded) restrictFiles() {
	matches, _ := filepath.Glob(filepath.Join(e.dir, "*.sqlite*"))
	for _, m := range matches {
		if err := os.Chmod(m, 0o600); err != nil {
			e.log.Warn("cannot restrict store file", "file", m, "err", err)
		}
	}
}

// minLevel drops records below a level. FerretDB logs every failed
// command at WARN, including the driver's harmless endSessions on
// disconnect, which would drown the appliance's own log. FerretDB also
// derives a logger with the whole statement as attributes for every SQL
// statement; those are kept unformatted until a record is really logged,
// which is almost never.
type minLevel struct {
	h     slog.Handler
	min   slog.Level
	attrs []slog.Attr
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}

func (m minLevel) Handle(ctx context.Context, r slog.Record) error {
	h := m.h
	if len(m.attrs) > 0 {
		h = h.WithAttrs(m.attrs)
	}
	return h.Handle(ctx, r)
}

func (m minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h: m.h, min: m.min, attrs: append(m.attrs[:len(m.attrs):len(m.attrs)], a...)}
}

func (m minLevel) WithGroup(name string) slog.Handler {
	h := m.h
	if len(m.attrs) > 0 {
		h = h.WithAttrs(m.attrs)
	}
	return minLevel{h: h.WithGroup(name), min: m.min}
}
