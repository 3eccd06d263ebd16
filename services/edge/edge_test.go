package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/piot-appliance/piot/services/adapter/devsim"
	"github.com/piot-appliance/piot/services/adapter/protocol"
	"github.com/piot-appliance/piot/services/adapter/relay/wire"
)

const testKey = "0123456789abcdef"

// sink is a real MQTT broker (mochi) on loopback that records what edge
// adapters publish; refuse, while positive, withholds that many PUBACKs.
type sink struct {
	mqtt.HookBase
	srv  *mqtt.Server
	addr string

	mu     sync.Mutex
	envs   []wire.Envelope
	topics []string
	refuse int
}

func (s *sink) ID() string           { return "sink" }
func (s *sink) Provides(b byte) bool { return b == mqtt.OnPublish }
func (s *sink) OnPublish(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse > 0 {
		s.refuse--
		return pk, packets.ErrRejectPacket // no PUBACK
	}
	var e wire.Envelope
	if err := json.Unmarshal(pk.Payload, &e); err == nil {
		s.envs = append(s.envs, e)
		s.topics = append(s.topics, pk.TopicName)
	}
	return pk, nil
}

func (s *sink) received() ([]wire.Envelope, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]wire.Envelope(nil), s.envs...), append([]string(nil), s.topics...)
}

func startSink(t *testing.T, addr string) *sink {
	t.Helper()
	s := &sink{addr: addr}
	s.srv = mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := s.srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.srv.AddHook(s, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.srv.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: addr})); err != nil {
		t.Fatal(err)
	}
	if err := s.srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newEdge(t *testing.T, broker string, mutate func(*Config)) *Edge {
	t.Helper()
	cfg := Config{
		Listen: "127.0.0.1:0", Broker: "tcp://" + broker, Org: "site", Username: "u", Password: "p",
		SpoolDir: t.TempDir(), AESKey: testKey, MinInterval: -1, MaxBody: 4096,
		Window: 4, AckTimeout: time.Second, BackoffMax: time.Second,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	})
	return e
}

func post(t *testing.T, url string, body []byte) int {
	t.Helper()
	resp, err := http.Post(url, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Packets are checked, spooled and forwarded in order as envelopes of the
// device's own bytes; the spool drains.
func TestForwardsInOrder(t *testing.T) {
	s := startSink(t, freeAddr(t))
	e := newEdge(t, s.addr, nil)
	url := "http://" + e.Addr()
	var bodies [][]byte
	for i := 1; i <= 10; i++ {
		b, err := devsim.EncodePIOT("dev1", i, time.Unix(1_764_000_000+int64(i), 0), []byte(testKey))
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
		if st := post(t, url+"/adapter", b); st != http.StatusOK {
			t.Fatalf("packet %d: %d", i, st)
		}
	}
	vd, err := devsim.EncodeVDGPS("trk", 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st := post(t, url+"/adapter/vdgps", vd); st != http.StatusOK {
		t.Fatalf("vdgps: %d", st)
	}
	waitFor(t, "11 envelopes", func() bool { envs, _ := s.received(); return len(envs) == 11 })
	envs, topics := s.received()
	for i, env := range envs {
		want, topic := vd, wire.Topic("site", wire.ProtoVDGPS)
		if i < 10 {
			want, topic = bodies[i], wire.Topic("site", wire.ProtoPIOT)
		}
		if !bytes.Equal(env.Body, want) || topics[i] != topic || env.Edge != e.ID() ||
			i > 0 && env.Seq <= envs[i-1].Seq || time.Since(time.UnixMilli(env.RX)) > time.Minute {
			t.Fatalf("envelope %d on %s: %+v", i, topics[i], env)
		}
	}
	waitFor(t, "an empty spool", func() bool { st := e.Status(); return st.Spool.Records == 0 && st.Uplink.Forwarded == 11 })
	if st := e.Status(); st.Uplink.State != StateConnected || st.Spool.Acked != 11 {
		t.Fatalf("status %+v", st)
	}
}

// With a device's own credentials the edge adapter takes only that
// device's packets and forwards them under the thing's topics.
func TestDeviceCredentialsForwardOneDevice(t *testing.T) {
	s := startSink(t, freeAddr(t))
	e := newEdge(t, s.addr, func(c *Config) { c.Username = "thing:dev1" })
	url := "http://" + e.Addr()
	own, err := devsim.EncodePIOT("dev1", 1, time.Now(), []byte(testKey))
	if err != nil {
		t.Fatal(err)
	}
	other, err := devsim.EncodePIOT("dev2", 1, time.Now(), []byte(testKey))
	if err != nil {
		t.Fatal(err)
	}
	if st := post(t, url+"/adapter", other); st != http.StatusForbidden {
		t.Fatalf("another device's packet: %d", st)
	}
	if st := post(t, url+"/adapter", own); st != http.StatusOK {
		t.Fatalf("own packet: %d", st)
	}
	waitFor(t, "1 envelope", func() bool { envs, _ := s.received(); return len(envs) == 1 })
	if _, topics := s.received(); topics[0] != wire.DeviceTopic("site", "dev1", wire.ProtoPIOT) {
		t.Fatalf("published to %s", topics[0])
	}
	if st := e.Status(); st.Rejected[protocol.ReasonForeignDevice] != 1 || st.Device != "dev1" {
		t.Fatalf("status %+v", st)
	}
}

// What the edge adapter refuses never reaches the spool.
func TestRefusesBadPackets(t *testing.T) {
	e := newEdge(t, freeAddr(t), func(c *Config) { c.VDGPSListen = "127.0.0.1:0" })
	url := "http://" + e.Addr()
	wrongKey, _ := devsim.EncodePIOT("dev1", 1, time.Now(), []byte("fedcba9876543210"))
	for _, c := range []struct {
		path   string
		body   []byte
		status int
	}{
		{"/adapter", []byte("garbage"), http.StatusBadRequest},
		{"/adapter", wrongKey, http.StatusBadRequest},
		{"/adapter", bytes.Repeat([]byte("x"), 5000), http.StatusRequestEntityTooLarge},
		{"/adapter", []byte(`{"device":"","readings":[]}`), http.StatusBadRequest},
		{"/adapter/vdgps", []byte("KEY|ID|39"), http.StatusBadRequest},
	} {
		if st := post(t, url+c.path, c.body); st != c.status {
			t.Errorf("%s %q: %d, want %d", c.path, c.body[:min(len(c.body), 20)], st, c.status)
		}
	}
	resp, err := http.Get(url + "/adapter")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /adapter: %d", resp.StatusCode)
	}
	// Legacy trackers post to any path of their own listener.
	vd, _ := devsim.EncodeVDGPS("trk", 1, time.Now())
	if st := post(t, "http://"+e.VDGPSAddr()+"/any/where.php", vd); st != http.StatusOK {
		t.Errorf("legacy VD GPS listener: %d", st)
	}
	st := e.Status()
	if st.Spool.Appended != 1 || st.Rejected["bad_cipher_length"] != 1 || st.Rejected["empty_device"] != 1 || st.Rejected["bad_padding"] != 1 ||
		st.Rejected["body_too_large"] != 1 || st.Rejected["bad_packet"] != 1 || st.Rejected["method_not_allowed"] != 1 {
		t.Fatalf("status %+v", st)
	}
}

// With the broker away the edge adapter backs off and says why; once the
// broker is there and after withheld acknowledgements, everything
// arrives, in order, resends included.
func TestRetriesUntilAcknowledged(t *testing.T) {
	// Hold the port, refusing connections, so that nothing else on the
	// machine takes it while the broker is "down".
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := down.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := down.Addr().String()
	e := newEdge(t, addr, nil)
	url := "http://" + e.Addr()
	for i := 1; i <= 12; i++ {
		b, _ := devsim.EncodePIOT("dev1", i, time.Now(), nil)
		if st := post(t, url+"/adapter", b); st != http.StatusOK {
			t.Fatalf("packet %d: %d", i, st)
		}
	}
	waitFor(t, "a failed connection", func() bool {
		st := e.Status()
		return st.Uplink.State == StateBackoff && st.Uplink.LastError != "" && st.Uplink.Failures > 0
	})
	if st := e.Status(); st.Spool.Records != 12 {
		t.Fatalf("spool %+v", st.Spool)
	}
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), "piot_edge_spool_records 12") || !strings.Contains(string(m), "piot_edge_uplink_connected 0") {
		t.Fatalf("metrics:\n%s", m)
	}

	down.Close()
	s := startSink(t, addr)
	s.mu.Lock()
	s.refuse = 2 // the first window is not acknowledged: the session restarts
	s.mu.Unlock()
	waitFor(t, "an empty spool", func() bool { return e.Status().Spool.Records == 0 })
	// After the withheld acknowledgements the edge adapter started again
	// from the oldest unacknowledged packet: the packets from there on
	// arrived in spool order.
	envs, _ := s.received()
	seen := map[uint64]bool{}
	restart := 0
	for i, env := range envs {
		seen[env.Seq] = true
		if i > 0 && env.Seq < envs[i-1].Seq {
			restart = i
		}
	}
	for i := restart + 1; i < len(envs); i++ {
		if envs[i].Seq <= envs[i-1].Seq {
			t.Fatalf("out of order after the restart: %d then %d", envs[i-1].Seq, envs[i].Seq)
		}
	}
	if len(seen) != 12 || len(envs)-restart != 12 {
		t.Fatalf("%d distinct packets, %d since the restart; want 12 and 12", len(seen), len(envs)-restart)
	}
}

// With a device's own key the edge adapter accepts that device only
// encrypted with it, as the appliance will; other devices keep the
// global key.
func TestDeviceOwnKeys(t *testing.T) {
	const own = "fedcba9876543210"
	s := startSink(t, freeAddr(t))
	e := newEdge(t, s.addr, func(c *Config) { c.DeviceKeys = map[string]string{"dev1": own} })
	url := "http://" + e.Addr()
	enc := func(dev, key string) []byte {
		var k []byte
		if key != "" {
			k = []byte(key)
		}
		b, err := devsim.EncodePIOT(dev, 1, time.Now(), k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		url  string
		body []byte
		want int
	}{
		{url + "/adapter", enc("dev1", own), http.StatusOK},
		{url + "/adapter?device=dev1", enc("dev1", own), http.StatusOK},
		{url + "/adapter", enc("dev1", testKey), http.StatusBadRequest},
		{url + "/adapter", enc("dev1", ""), http.StatusBadRequest},
		{url + "/adapter", enc("dev2", own), http.StatusBadRequest},
		{url + "/adapter", enc("dev2", testKey), http.StatusOK},
	} {
		if st := post(t, c.url, c.body); st != c.want {
			t.Errorf("%s: %d, want %d", c.url, st, c.want)
		}
	}
	waitFor(t, "3 envelopes", func() bool { envs, _ := s.received(); return len(envs) == 3 })
	if st := e.Status(); st.Rejected[protocol.ReasonWrongKey] != 2 {
		t.Fatalf("status %+v", st)
	}
}

func TestLoadDeviceKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keys, err := LoadDeviceKeys(write("ok", "# site keys\n\ndev1 0123456789abcdef\nVDX1 key with spaces!\r\n", 0o600))
	if err != nil || len(keys) != 2 || keys["dev1"] != "0123456789abcdef" || keys["VDX1"] != "key with spaces!" {
		t.Fatalf("keys %q, %v", keys, err)
	}
	for name, c := range map[string]struct {
		text string
		mode os.FileMode
		want string
	}{
		"readable": {"dev1 0123456789abcdef\n", 0o644, "group or others"},
		"short":    {"dev1 0123\n", 0o600, "exactly 16 bytes"},
		"no key":   {"dev1\n", 0o600, "want"},
		"twice":    {"dev1 0123456789abcdef\ndev1 0123456789abcdef\n", 0o600, "twice"},
		"bad id":   {"a/b 0123456789abcdef\n", 0o600, "invalid device id"},
	} {
		if _, err := LoadDeviceKeys(write(strings.ReplaceAll(name, " ", "-"), c.text, c.mode)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
		}
	}
}
