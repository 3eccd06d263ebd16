package broker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/core/coretest"
	"github.com/piot-appliance/piot/services/store"
)

// One real store and core serve the whole package: starting the embedded
// FerretDB per test would dominate the run time. Tests use orgs of their
// own, so they do not see each other's credentials.
var fixture struct {
	once  sync.Once
	core  *core.Core
	admin core.Actor
	err   error
	seq   atomic.Int64
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.core != nil {
		_ = fixtureStore.Close(context.Background())
		_ = os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

var (
	fixtureStore *store.Store
	fixtureDir   string
)

func sharedCore(t *testing.T) (*core.Core, core.Actor) {
	t.Helper()
	fixture.once.Do(func() {
		ctx := context.Background()
		dir, err := os.MkdirTemp("", "broker-test-store-")
		if err != nil {
			fixture.err = err
			return
		}
		fixtureDir = dir
		fx, err := coretest.Setup(ctx, dir, coretest.Options{AdminEmail: "admin@x.test", AdminPassword: "password123"})
		if err != nil {
			fixture.err = err
			return
		}
		fixtureStore = fx.Store
		fixture.core, fixture.admin = fx.Core, fx.Admin
	})
	if fixture.err != nil {
		t.Fatalf("test store/core: %v", fixture.err)
	}
	return fixture.core, fixture.admin
}

// tenant is an org with MQTT credentials.
type tenant struct {
	id       core.ID
	name     string
	username string
	password string
}

// newTenant creates an org with a unique name ("<prefix><n>") and MQTT
// credentials.
func newTenant(t *testing.T, prefix string) tenant {
	t.Helper()
	c, admin := sharedCore(t)
	n := fixture.seq.Add(1)
	name := fmt.Sprintf("%s%d", prefix, n)
	org, err := c.CreateOrg(context.Background(), admin, name, "")
	if err != nil {
		t.Fatal(err)
	}
	creds, err := c.SetOrgMQTTCredentials(context.Background(), admin, org.ID, "user-"+name)
	if err != nil {
		t.Fatal(err)
	}
	return tenant{id: org.ID, name: name, username: creds.Username, password: creds.Password}
}

// rotate gives the tenant a new password and returns the old one.
func (tn *tenant) rotate(t *testing.T) string {
	t.Helper()
	c, admin := sharedCore(t)
	creds, err := c.SetOrgMQTTCredentials(context.Background(), admin, tn.id, tn.username)
	if err != nil {
		t.Fatal(err)
	}
	old := tn.password
	tn.password = creds.Password
	return old
}

func (tn tenant) topic(rest string) string { return "org/" + tn.name + "/" + rest }

// testBroker runs a broker on loopback ports.
type testBroker struct {
	*Broker
	healthy *atomic.Bool
	dir     string
	kept    *keptLog
}

func startBroker(t *testing.T, mod func(*Config)) *testBroker {
	t.Helper()
	return startBrokerIn(t, t.TempDir(), mod)
}

func startBrokerIn(t *testing.T, dir string, mod func(*Config)) *testBroker {
	t.Helper()
	c, _ := sharedCore(t)
	healthy := new(atomic.Bool)
	healthy.Store(true)
	w := testWriter{t: t, kept: &keptLog{}}
	cfg := Config{
		DataDir:  dir,
		MQTTAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	if mod != nil {
		mod(&cfg)
	}
	b, err := New(cfg, Deps{Core: c, StoreHealthy: healthy.Load})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	tb := &testBroker{Broker: b, healthy: healthy, dir: dir, kept: w.kept}
	t.Cleanup(func() { tb.stop(t) })
	return tb
}

func (b *testBroker) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}

func (b *testBroker) addr(kind string) string {
	a, ok := b.Addrs()[kind]
	if !ok {
		panic("listener not enabled: " + kind)
	}
	return a
}

// testWriter sends broker logs to the test log, so they show on failure,
// and keeps them for tests that look for a line.
type testWriter struct {
	t    *testing.T
	kept *keptLog
}

type keptLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	if w.kept != nil {
		w.kept.mu.Lock()
		w.kept.buf.Write(p)
		w.kept.mu.Unlock()
	}
	return len(p), nil
}

// logs is what the broker logged so far.
func (b *testBroker) logs() string {
	b.kept.mu.Lock()
	defer b.kept.mu.Unlock()
	return b.kept.buf.String()
}

// v5 is an MQTT 5 test client (paho.golang).
type v5 struct {
	*paho.Client
	msgs       chan *paho.Publish
	disconnect chan *paho.Disconnect
	connack    *paho.Connack
	conn       net.Conn
}

type v5opts struct {
	clientID      string
	noCreds       bool
	resume        bool   // clean start false
	expiry        uint32 // session expiry interval
	keepalive     uint16 // 0: 30 s
	zeroKeepalive bool
	will          *paho.WillMessage
}

// dial5 connects an MQTT 5 client; err is set when CONNACK refuses.
func dial5(t *testing.T, addr, username, password string, o v5opts) (*v5, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := &v5{msgs: make(chan *paho.Publish, 100), disconnect: make(chan *paho.Disconnect, 1), conn: conn}
	c.Client = paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			c.msgs <- pr.Packet
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case c.disconnect <- d:
			default:
			}
		},
		OnClientError: func(error) {},
	})
	cp := &paho.Connect{ClientID: o.clientID, KeepAlive: 30, CleanStart: !o.resume}
	if o.keepalive != 0 {
		cp.KeepAlive = o.keepalive
	}
	if o.zeroKeepalive {
		cp.KeepAlive = 0
	}
	if o.clientID == "" {
		cp.ClientID = fmt.Sprintf("c%d", fixture.seq.Add(1))
	}
	if !o.noCreds {
		cp.Username, cp.UsernameFlag = username, true
		cp.Password, cp.PasswordFlag = []byte(password), true
	}
	if o.expiry != 0 {
		exp := o.expiry
		cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: &exp}
	}
	cp.WillMessage = o.will
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ca, err := c.Connect(ctx, cp)
	c.connack = ca
	if err != nil {
		conn.Close()
		return c, err
	}
	t.Cleanup(func() { c.close() })
	return c, nil
}

func (c *v5) close() {
	_ = c.Disconnect(&paho.Disconnect{})
	c.conn.Close()
}

func (c *v5) subscribe(t *testing.T, filter string) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	if err != nil && sa == nil {
		t.Fatalf("subscribe %s: %v", filter, err)
	}
	return sa.Reasons[0]
}

func (c *v5) publish(t *testing.T, topic, payload string, retain bool) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pr, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(payload), Retain: retain})
	if pr == nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
	return pr.ReasonCode
}

// expect waits for one message on topic with payload.
func (c *v5) expect(t *testing.T, topic, payload string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-c.msgs:
			if m.Topic == topic && string(m.Payload) == payload {
				return
			}
			t.Logf("skipping %s %q", m.Topic, m.Payload)
		case <-deadline:
			t.Fatalf("no message %q on %s", payload, topic)
		}
	}
}

// expectNone asserts that nothing arrives for a while.
func (c *v5) expectNone(t *testing.T, wait time.Duration) {
	t.Helper()
	select {
	case m := <-c.msgs:
		t.Fatalf("unexpected message on %s: %q", m.Topic, m.Payload)
	case <-time.After(wait):
	}
}

// dial3 connects an MQTT 3.1.1 client (paho.mqtt.golang) to a broker URL
// such as tcp://host:port, ssl://… or ws://…; err is set when CONNACK
// refuses.
func dial3(t *testing.T, url, username, password string, mod func(*paho3.ClientOptions)) (paho3.Client, chan paho3.Message, error) {
	t.Helper()
	msgs := make(chan paho3.Message, 100)
	opts := paho3.NewClientOptions().AddBroker(url).
		SetClientID(fmt.Sprintf("c3-%d", fixture.seq.Add(1))).
		SetUsername(username).SetPassword(password).
		SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).
		SetDefaultPublishHandler(func(_ paho3.Client, m paho3.Message) { msgs <- m })
	if mod != nil {
		mod(opts)
	}
	c := paho3.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatal("v3 connect timed out")
	}
	if err := tok.Error(); err != nil {
		return c, msgs, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, msgs, nil
}

func subscribe3(t *testing.T, c paho3.Client, filter string) byte {
	t.Helper()
	tok := c.Subscribe(filter, 1, nil)
	if !tok.WaitTimeout(5 * time.Second) {
		t.Fatalf("subscribe %s timed out", filter)
	}
	st := tok.(*paho3.SubscribeToken)
	return st.Result()[filter]
}

func publish3(t *testing.T, c paho3.Client, topic string, qos byte, retain bool, payload string) error {
	t.Helper()
	tok := c.Publish(topic, qos, retain, payload)
	if !tok.WaitTimeout(3 * time.Second) {
		return fmt.Errorf("publish %s timed out", topic)
	}
	return tok.Error()
}

func expect3(t *testing.T, msgs chan paho3.Message, topic, payload string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-msgs:
			if m.Topic() == topic && string(m.Payload()) == payload {
				return
			}
			t.Logf("skipping %s %q", m.Topic(), m.Payload())
		case <-deadline:
			t.Fatalf("no message %q on %s", payload, topic)
		}
	}
}

func expectNone3(t *testing.T, msgs chan paho3.Message, wait time.Duration) {
	t.Helper()
	select {
	case m := <-msgs:
		t.Fatalf("unexpected message on %s: %q", m.Topic(), m.Payload())
	case <-time.After(wait):
	}
}

// mosquitto runs a Debian mosquitto client; tests skip without them
// unless PIOT_REQUIRE_MOSQUITTO is set (as in `make test`).
func mosquitto(t *testing.T, tool string, args ...string) (string, error) {
	t.Helper()
	path, ok := mosquittoPath(t, tool)
	if !ok {
		t.Skipf("%s not installed (run tests/deps.sh)", tool)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// mosquittoPath finds a mosquitto tool; it fails the test when the tool is
// missing but required (PIOT_REQUIRE_MOSQUITTO), else reports false.
func mosquittoPath(t *testing.T, tool string) (string, bool) {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("PIOT_REQUIRE_MOSQUITTO") != "" {
			t.Fatalf("%s not installed (run tests/deps.sh)", tool)
		}
		return "", false
	}
	return path, true
}

// hostPort splits an address for the mosquitto tools' -h and -p.
func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
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

func (b *testBroker) connected() int64 { return atomic.LoadInt64(&b.server.Info.ClientsConnected) }

func (b *testBroker) subscriptions() int64 { return atomic.LoadInt64(&b.server.Info.Subscriptions) }

// connectPacket is a raw CONNECT of MQTT 3.1.1 (level 4) or 5 with
// credentials and the client ID "m", for tests that speak bytes.
func connectPacket(level byte, user, pass string) []byte {
	return connectPacketID(level, "m", user, pass)
}

// connectPacketID is connectPacket with another client ID.
func connectPacketID(level byte, id, user, pass string) []byte {
	var body bytes.Buffer
	body.Write([]byte{0, 4, 'M', 'Q', 'T', 'T', level, 0xC2, 0, 30})
	if level >= 5 {
		body.WriteByte(0) // no properties
	}
	body.Write([]byte{0, byte(len(id))})
	body.WriteString(id)
	body.Write([]byte{0, byte(len(user))})
	body.WriteString(user)
	body.Write([]byte{0, byte(len(pass))})
	body.WriteString(pass)
	return append([]byte{0x10, byte(body.Len())}, body.Bytes()...)
}

// readRawPacket reads one packet of at most 127 bytes of body.
func readRawPacket(t *testing.T, conn net.Conn) []byte {
	t.Helper()
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(conn, hdr); err != nil {
		t.Fatal(err)
	}
	rest := make([]byte, hdr[1])
	if _, err := io.ReadFull(conn, rest); err != nil {
		t.Fatal(err)
	}
	return append(hdr, rest...)
}

// rawConnect connects a byte-level client and checks that the CONNACK
// accepts it.
func rawConnect(t *testing.T, addr string, level byte, user, pass string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(connectPacket(level, user, pass)); err != nil {
		t.Fatal(err)
	}
	if ca := readRawPacket(t, conn); ca[0] != 0x20 || ca[3] != 0 {
		t.Fatalf("CONNACK % x", ca)
	}
	return conn
}
