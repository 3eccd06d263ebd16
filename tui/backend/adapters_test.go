package backend

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/appliance/supervisor"
	"github.com/piot-appliance/piot/services/broker"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
	"github.com/piot-appliance/piot/tui"
	gossh "golang.org/x/crypto/ssh"
)

var (
	_ tui.Metrics    = (*Metrics)(nil)
	_ tui.Health     = (*Tracker)(nil)
	_ tui.History    = (*History)(nil)
	_ tui.SystemInfo = (*System)(nil)
)

// sensorThing creates an enabled sensor of the tenant listening on
// <name>/value and waits until the ingest routes it. Thing names are
// unique across orgs, so name gets a number.
func sensorThing(t *testing.T, s *stack, tn tenant, name string) core.Thing {
	t.Helper()
	ctx := context.Background()
	name = fmt.Sprintf("%s%d", name, fx.seq.Add(1))
	th, err := fx.c.CreateThing(ctx, fx.admin, name, "sensor")
	if err != nil {
		t.Fatal(err)
	}
	if th, err = fx.c.UpdateThing(ctx, fx.admin, core.ThingUpdate{ID: th.ID, SetOrg: true, OrgID: tn.org.ID, Enabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if th, err = fx.c.UpdateThingSensor(ctx, fx.admin, core.SensorUpdate{ID: th.ID, MeasurementTopic: ptr("value")}); err != nil {
		t.Fatal(err)
	}
	if s != nil {
		eventually(t, 5*time.Second, "ingest routes the thing", func() bool {
			r := s.ing.Process(tn.topic(name+"/value"), []byte("1"), time.Now())
			return len(r.Points) > 0
		})
	}
	return th
}

func TestMetricsRates(t *testing.T) {
	s := startStack(t, false)
	tn := newTenant(t, "metrics")
	temp := sensorThing(t, s, tn, "temp")
	m := NewMetrics(s.b, s.ing, 50*time.Millisecond)
	m.Start()
	defer m.Stop()
	if got := m.Snapshot(); got.MessagesPerSecond != 0 || got.IngestPerSecond != 0 {
		t.Errorf("idle snapshot = %+v", got)
	}
	c := s.dial(t, tn)
	eventually(t, 3*time.Second, "client counted", func() bool { return m.Snapshot().ConnectedClients >= 1 })

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // steady traffic while the sampler looks
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tok := c.Publish(tn.topic(temp.Name+"/value"), 1, false, fmt.Sprint(20+i%5))
			tok.WaitTimeout(5 * time.Second)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	eventually(t, 10*time.Second, "rates above zero", func() bool {
		got := m.Snapshot()
		return got.MessagesPerSecond > 1 && got.IngestPerSecond > 1
	})
	close(stop)
	<-done
	if d := m.Snapshot().JournalDepth; d < 0 {
		t.Errorf("journal depth %d", d)
	}
	// Once everything is flushed and checkpointed, nothing is pending and
	// the rates fall back to zero.
	eventually(t, 10*time.Second, "journal drained, rates zero", func() bool {
		got := m.Snapshot()
		return got.JournalDepth == 0 && got.MessagesPerSecond == 0 && got.IngestPerSecond == 0
	})
	m.Stop()
	m.Stop() // idempotent
}

func TestJournalDepthOfFreshIngest(t *testing.T) {
	s := startStack(t, false)
	if d := s.ing.JournalDepth(); d != 0 {
		t.Fatalf("fresh journal depth = %d", d)
	}
}

func TestHistoryAuthorization(t *testing.T) {
	s := startStack(t, false)
	a, b := newTenant(t, "hista"), newTenant(t, "histb")
	mine := sensorThing(t, nil, a, "mine")
	theirs := sensorThing(t, nil, b, "theirs")
	member := newMember(t, a.org.ID)
	// A fixed clock at the start of the current hour keeps the buckets
	// (aligned to the epoch) predictable.
	hour := time.Now().Unix() / 3600 * 3600
	t0 := hour - 3600
	var pts []history.Point
	for i := range 10 {
		pts = append(pts, history.Point{Thing: mine.ID, Kind: history.KindSensor, TS: t0 + int64(i*300), Value: fmt.Sprint(i), Seq: uint64(i + 1)})
		pts = append(pts, history.Point{Thing: theirs.ID, Kind: history.KindSensor, TS: t0 + int64(i*300), Value: "7", Seq: uint64(i + 1)})
	}
	pts = append(pts,
		history.Point{Thing: mine.ID, Kind: history.KindSensor, TS: t0 + 3000, Value: "not a number", Seq: 100},
		history.Point{Thing: mine.ID, Kind: history.KindSensor, TS: hour, Value: "10", Seq: 101})
	if err := s.hist.Append(context.Background(), pts); err != nil {
		t.Fatal(err)
	}
	h := NewHistory(fx.c, s.hist, func() time.Time { return time.Unix(hour, 0) })
	ctx := context.Background()

	got, err := h.Recent(ctx, member, mine.ID, history.KindSensor, 2*time.Hour, 120)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[0 1 2 3 4 5 6 7 8 9 10]" {
		t.Errorf("member's own thing: %v", got)
	}
	// Steps of 20 minutes: three buckets in the hour, and the point at the
	// end of the span in a fourth; the newest three are kept.
	got, err = h.Recent(ctx, member, mine.ID, history.KindSensor, time.Hour, 3)
	if err != nil || fmt.Sprint(got) != "[5.5 8.5 10]" {
		t.Errorf("newest 3 buckets: %v %v", got, err)
	}
	if _, err := h.Recent(ctx, member, theirs.ID, history.KindSensor, 2*time.Hour, 120); err == nil ||
		(core.CodeOf(err) != core.CodeForbidden && core.CodeOf(err) != core.CodeNotFound) {
		t.Errorf("foreign thing: %v, want FORBIDDEN or NOT_FOUND", err)
	}
	if _, err := h.Recent(ctx, core.Anonymous(), mine.ID, history.KindSensor, time.Hour, 10); err == nil {
		t.Error("anonymous read history")
	}
	if _, err := h.Recent(ctx, member, mine.ID, "location", time.Hour, 10); core.CodeOf(err) != core.CodeBadInput {
		t.Errorf("location series: %v", err)
	}
	got, err = h.Recent(ctx, fx.admin, theirs.ID, history.KindSensor, 2*time.Hour, 120)
	if err != nil || len(got) != 10 {
		t.Errorf("admin: %v %v", got, err)
	}
}

func TestBackupAndMaintenance(t *testing.T) {
	dir := t.TempDir()
	logs := NewLogRing(10, slog.LevelInfo)
	sys := NewSystem(SystemConfig{
		DataDir: dir, Version: "test", Core: fx.c,
		Logs: logs, Logger: slog.New(logs.Handler()),
	})
	ctx := context.Background()
	member := newMember(t)
	tn := newTenant(t, "backup")

	if _, err := sys.Backup(ctx, member, ""); core.CodeOf(err) != core.CodeForbidden {
		t.Fatalf("member backup: %v", err)
	}
	path, err := sys.Backup(ctx, fx.admin, "")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(path) != filepath.Join(dir, BackupDir) {
		t.Errorf("backup written to %s", path)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v", st.Mode().Perm())
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	if !sc.Scan() {
		t.Fatal("empty backup")
	}
	var header struct {
		Format      string   `json:"format"`
		Collections []string `json:"collections"`
	}
	if err := json.Unmarshal(sc.Bytes(), &header); err != nil || header.Format != BackupFormat {
		t.Fatalf("header %s: %v", sc.Bytes(), err)
	}
	counts := map[string]int{}
	var sawAdmin, sawOrg bool
	for sc.Scan() {
		var line struct {
			C string          `json:"c"`
			D json.RawMessage `json:"d"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %s: %v", sc.Bytes(), err)
		}
		counts[line.C]++
		sawAdmin = sawAdmin || strings.Contains(string(line.D), "admin@x.test")
		sawOrg = sawOrg || strings.Contains(string(line.D), `"`+tn.org.Name+`"`)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !sawAdmin || !sawOrg || len(counts) < 3 {
		t.Errorf("backup content: admin %v, org %v, collections %v (header %v)", sawAdmin, sawOrg, counts, header.Collections)
	}

	// Never overwrite; relative paths stay in the backup directory.
	if _, err := sys.Backup(ctx, fx.admin, filepath.Base(path)); core.CodeOf(err) != core.CodeConflict {
		t.Errorf("overwrite: %v", err)
	}
	if _, err := sys.Backup(ctx, fx.admin, "../escape.jsonl"); core.CodeOf(err) != core.CodeBadInput {
		t.Errorf("escape: %v", err)
	}
	abs := filepath.Join(t.TempDir(), "b.jsonl")
	if p, err := sys.Backup(ctx, fx.admin, abs); err != nil || p != abs {
		t.Errorf("absolute path: %s %v", p, err)
	}
	if tail := strings.Join(logs.Tail(10), "\n"); !strings.Contains(tail, "store backup written") || !strings.Contains(tail, "admin@x.test") {
		t.Errorf("no audit line:\n%s", tail)
	}

	if err := sys.Restore(ctx, member, path); core.CodeOf(err) != core.CodeForbidden {
		t.Errorf("member restore: %v", err)
	}
	for name, op := range map[string]func(core.Actor) error{
		"reboot":    func(a core.Actor) error { return sys.Reboot(ctx, a) },
		"power off": func(a core.Actor) error { return sys.PowerOff(ctx, a) },
		"tls":       func(a core.Actor) error { return sys.RegenerateTLS(ctx, a) }, // no broker
		"os settings": func(a core.Actor) error {
			_, err := sys.OSSettings(ctx, a)
			return err
		},
		"set os settings": func(a core.Actor) error {
			return sys.SetOSSettings(ctx, a, tui.OSSettings{Hostname: "x", Network: "dhcp", Timezone: "UTC"})
		},
	} {
		if err := op(fx.admin); !errors.Is(err, tui.ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", name, err)
		}
		if err := op(member); core.CodeOf(err) != core.CodeForbidden {
			t.Errorf("%s by member: %v, want FORBIDDEN", name, err)
		}
	}
}

func TestSystemListenersAndTLS(t *testing.T) {
	s := startStack(t, true)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sys := NewSystem(SystemConfig{
		DataDir: s.dir, TLS: s.b,
		Listeners: func() []tui.Listener {
			return append(BrokerListeners(s.b.Addrs(), s.b.ServerCertificate()), SSHListener("127.0.0.1:2222", hostKey))
		},
	})
	find := func(name string) tui.Listener {
		t.Helper()
		for _, l := range sys.Listeners() {
			if l.Name == name {
				return l
			}
		}
		t.Fatalf("no listener %s in %+v", name, sys.Listeners())
		return tui.Listener{}
	}
	// The fingerprint is the one of the certificate a client is served.
	served := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", s.b.Addrs()[broker.ListenerTLS], &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return CertFingerprint(conn.ConnectionState().PeerCertificates[0])
	}
	l := find("mqtt-tls")
	if !l.TLS || !strings.HasPrefix(l.CertSHA, "SHA256:") || l.CertSHA != served() {
		t.Errorf("tls listener %+v, served %s", l, served())
	}
	if l.Expires.Before(time.Now().Add(24 * time.Hour)) {
		t.Errorf("expires %v", l.Expires)
	}
	if p := find("mqtt"); p.TLS || p.CertSHA != "" || p.Addr != s.b.Addrs()[broker.ListenerTCP] {
		t.Errorf("plain listener %+v", p)
	}
	if k := find("ssh"); k.CertSHA != gossh.FingerprintSHA256(hostKey) {
		t.Errorf("ssh listener %+v", k)
	}

	member := newMember(t)
	if err := sys.RegenerateTLS(context.Background(), member); core.CodeOf(err) != core.CodeForbidden {
		t.Errorf("member regenerate: %v", err)
	}
	if err := sys.RegenerateTLS(context.Background(), fx.admin); err != nil {
		t.Fatal(err)
	}
	if now := find("mqtt-tls").CertSHA; now == l.CertSHA || now != served() {
		t.Errorf("after regenerate: listed %s, served %s, before %s", now, served(), l.CertSHA)
	}
}

// fakeService is a supervised service for the tracker.
type fakeService struct {
	name     string
	startErr error
	errc     chan error
}

func (f *fakeService) Name() string                { return f.name }
func (f *fakeService) Start(context.Context) error { return f.startErr }
func (f *fakeService) Stop(context.Context) error  { return nil }

type failingService struct{ fakeService }

func (f *failingService) Err() <-chan error { return f.errc }

func TestTrackerServices(t *testing.T) {
	tr := NewTracker()
	healthy := true
	a := tr.Track(&fakeService{name: "store"}, func() (bool, string) { return healthy, "probed" })
	b := tr.Track(&failingService{fakeService{name: "broker", errc: make(chan error)}}, nil)
	c := tr.Track(&fakeService{name: "http", startErr: errors.New("port in use")}, nil)
	if _, ok := b.(supervisor.Failer); !ok {
		t.Error("Failer hidden by the wrapper")
	}
	if _, ok := a.(supervisor.Failer); ok {
		t.Error("wrapper invents a Failer")
	}
	ctx := context.Background()
	detail := func() string {
		var out []string
		for _, s := range tr.Services() {
			out = append(out, fmt.Sprintf("%s %v %s", s.Name, s.OK, s.Detail))
		}
		return strings.Join(out, "; ")
	}
	if got := detail(); got != "store false not started; broker false not started; http false not started" {
		t.Errorf("initially: %s", got)
	}
	_ = a.Start(ctx)
	_ = b.Start(ctx)
	_ = c.Start(ctx)
	if got := detail(); got != "store true probed; broker true running; http false failed to start: port in use" {
		t.Errorf("started: %s", got)
	}
	healthy = false
	if tr.Services()[0].OK || !tr.Running("store") || tr.Running("http") || tr.Running("nope") {
		t.Errorf("after probe failure: %s", detail())
	}
	_ = b.Stop(ctx)
	if got := tr.Services()[1]; got.OK || got.Detail != "stopped" || tr.Running("broker") {
		t.Errorf("stopped: %+v", got)
	}
}

func TestLogRingTee(t *testing.T) {
	ring := NewLogRing(3, slog.LevelInfo)
	var primary strings.Builder
	log := slog.New(Tee(slog.NewTextHandler(&primary, &slog.HandlerOptions{Level: slog.LevelWarn}), ring))
	log = log.With("service", "x")
	log.Debug("dropped everywhere")
	log.Info("one")
	log.WithGroup("g").Info("two", "k", "v")
	log.Warn("three", "password", "hunter22", slog.Group("mqtt", "Token", "t0k3n"))
	log.Error("four", "err", strings.Repeat("é", MaxLogLineLen))
	tail := ring.Tail(10)
	if len(tail) != 3 || !strings.Contains(tail[0], "msg=two") || !strings.Contains(tail[0], "g.k=v") ||
		!strings.Contains(tail[1], "msg=three") || !strings.Contains(tail[2], "msg=four") {
		t.Errorf("tail = %q", tail)
	}
	if !strings.Contains(tail[1], "service=x") || strings.Contains(tail[1], "time=2") && !strings.Contains(tail[1], "T") {
		t.Errorf("attrs/time: %q", tail[1])
	}
	if strings.Contains(tail[1], "hunter22") || strings.Contains(tail[1], "t0k3n") ||
		!strings.Contains(tail[1], "password=[redacted]") || !strings.Contains(tail[1], "mqtt.Token=[redacted]") {
		t.Errorf("secret kept: %q", tail[1])
	}
	if !strings.Contains(primary.String(), "hunter22") {
		t.Error("the primary handler must get the record unchanged")
	}
	if len(tail[2]) > MaxLogLineLen+len("…") || !strings.HasSuffix(tail[2], "…") {
		t.Errorf("long line kept %d bytes", len(tail[2]))
	}
	if got := ring.Tail(1); len(got) != 1 || got[0] != tail[2] {
		t.Errorf("tail(1) = %q", got)
	}
	if p := primary.String(); strings.Contains(p, "msg=one") || !strings.Contains(p, "msg=three") {
		t.Errorf("primary got:\n%s", p)
	}
	if got := NewLogRing(5, nil).Tail(5); len(got) != 0 {
		t.Errorf("empty ring: %q", got)
	}
}

func TestRestoreIsScheduled(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sys := NewSystem(SystemConfig{DataDir: dir, Core: fx.c})
	path, err := sys.Backup(ctx, fx.admin, "")
	if err != nil {
		t.Fatal(err)
	}
	member := newMember(t, newTenant(t, "restoreorg").org.ID)
	if err := sys.Restore(ctx, member, path); core.CodeOf(err) != core.CodeForbidden {
		t.Fatalf("member: %v", err)
	}
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := sys.Restore(ctx, fx.admin, bad); core.CodeOf(err) != core.CodeBadInput {
		t.Fatalf("not a backup: %v", err)
	}
	if err := sys.Restore(ctx, fx.admin, "../escape.jsonl"); core.CodeOf(err) != core.CodeBadInput {
		t.Fatalf("escaping path: %v", err)
	}
	if err := sys.Restore(ctx, fx.admin, path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, RestorePendingFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("pending restore: %v %v", st, err)
	}
}
