package backend

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/piot-appliance/piot/services/broker"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/core/coretest"
	"github.com/piot-appliance/piot/services/history"
	"github.com/piot-appliance/piot/services/ingest"
	"github.com/piot-appliance/piot/services/store"
)

// One real store and core serve the package (the embedded FerretDB is the
// slow part); tests use orgs and users of their own.
var fx struct {
	dir   string
	st    *store.Store
	c     *core.Core
	admin core.Actor
	seq   atomic.Int64
}

var quiet = slog.New(slog.DiscardHandler)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "backend-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	env, err := coretest.Setup(ctx, dir, coretest.Options{AdminEmail: "admin@x.test", AdminPassword: "password123", Logger: quiet})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer env.Close()
	fx.dir, fx.st, fx.c, fx.admin = dir, env.Store, env.Core, env.Admin
	return m.Run()
}

func ptr[T any](v T) *T { return &v }

type tenant struct {
	org      core.Org
	username string
	password string
}

func (tn tenant) topic(rest string) string { return "org/" + tn.org.Name + "/" + rest }

// newTenant creates an org with MQTT credentials.
func newTenant(t *testing.T, prefix string) tenant {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("%s%d", prefix, fx.seq.Add(1))
	org, err := fx.c.CreateOrg(ctx, fx.admin, name, "")
	if err != nil {
		t.Fatal(err)
	}
	creds, err := fx.c.SetOrgMQTTCredentials(ctx, fx.admin, org.ID, "u-"+name)
	if err != nil {
		t.Fatal(err)
	}
	return tenant{org: org, username: creds.Username, password: creds.Password}
}

// newMember creates a non-admin user in the given orgs and logs in.
func newMember(t *testing.T, orgs ...core.ID) core.Actor {
	t.Helper()
	ctx := context.Background()
	email := fmt.Sprintf("member%d@x.test", fx.seq.Add(1))
	u, err := fx.c.CreateUser(ctx, fx.admin, email, "password123", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range orgs {
		if err := fx.c.AddOrgUser(ctx, fx.admin, o, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	a, err := fx.c.Login(ctx, email, "password123")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// stack is a running ingest and broker, as `piot run` wires them.
type stack struct {
	dir  string
	b    *broker.Broker
	ing  *ingest.Ingest
	hist *history.Store
}

func startStack(t *testing.T, tls bool) *stack {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	h, err := history.New(fx.st, history.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ing, err := ingest.New(ingest.Config{DataDir: dir, FlushInterval: 50 * time.Millisecond, Logger: quiet},
		ingest.Deps{Core: fx.c, History: h})
	if err != nil {
		t.Fatal(err)
	}
	if err := ing.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ing.Stop(ctx); err != nil {
			t.Errorf("ingest stop: %v", err)
		}
	})
	cfg := broker.Config{DataDir: dir, MQTTAddr: "127.0.0.1:0", Logger: quiet}
	if tls {
		cfg.MQTTSAddr = "127.0.0.1:0"
	}
	b, err := broker.New(cfg, broker.Deps{Core: fx.c})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.AddHook(ing.Hook(), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Stop(ctx); err != nil {
			t.Errorf("broker stop: %v", err)
		}
	})
	return &stack{dir: dir, b: b, ing: ing, hist: h}
}

// dial connects an MQTT 3.1.1 client as a tenant.
func (s *stack) dial(t *testing.T, tn tenant) paho.Client {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker("tcp://" + s.b.Addrs()[broker.ListenerTCP]).
		SetClientID(fmt.Sprintf("c%d", fx.seq.Add(1))).
		SetUsername(tn.username).SetPassword(tn.password).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect as %s: %v", tn.username, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func publish(t *testing.T, c paho.Client, topic string, retain bool, payload string) {
	t.Helper()
	tok := c.Publish(topic, 1, retain, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// eventually polls cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
