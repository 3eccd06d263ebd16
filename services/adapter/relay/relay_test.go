package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/piot-appliance/piot/services/adapter"
	"github.com/piot-appliance/piot/services/adapter/devsim"
	"github.com/piot-appliance/piot/services/adapter/relay/wire"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/core/coretest"
	"github.com/piot-appliance/piot/services/ingest"
)

// sink stands in for the ingest journal: a batch is taken whole or not
// at all, and the marks in it are kept across hook restarts.
type sink struct {
	mu    sync.Mutex
	msgs  []adapter.Message
	marks map[string]uint64
	fail  bool
}

func (s *sink) publish(_ context.Context, msgs []adapter.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("journal unavailable")
	}
	for _, m := range msgs {
		if key, ok := strings.CutPrefix(m.Topic, "$mark/"); ok {
			seq, err := strconv.ParseUint(string(m.Payload), 10, 64)
			if err != nil {
				return err
			}
			s.marks[key] = max(s.marks[key], seq)
			continue
		}
		s.msgs = append(s.msgs, m)
	}
	return nil
}

func (s *sink) Last(key string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.marks[key]
}

func (s *sink) Message(key string, seq uint64) adapter.Message {
	return adapter.Message(ingest.Mark(key, seq))
}

func (s *sink) Record(key string, seq uint64) error {
	return s.publish(context.Background(), []adapter.Message{s.Message(key, seq)})
}

func (s *sink) values(topic string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.msgs {
		if m.Topic == topic {
			out = append(out, string(m.Payload))
		}
	}
	return out
}

type env struct {
	t    testing.TB
	ce   *coretest.Env
	sink *sink
	ad   *adapter.Adapter
	h    *Hook
}

func newEnv(t testing.TB) *env {
	ce := coretest.New(t)
	e := &env{t: t, ce: ce, sink: &sink{marks: map[string]uint64{}}}
	var err error
	e.ad, err = adapter.New(adapter.Config{}, adapter.Deps{Core: ce.Core, Publish: adapter.PublisherFunc(e.sink.publish)})
	if err != nil {
		t.Fatal(err)
	}
	e.reopen()
	return e
}

// reopen starts a new hook on the same journal (a restart).
func (e *env) reopen() {
	if e.h != nil {
		e.h.Close()
	}
	h, err := New(Config{}, Deps{Core: e.ce.Core, Marks: e.sink, Handlers: map[string]Handler{ProtoPIOT: e.ad}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.h = h
	e.t.Cleanup(func() { h.Close() })
}

// relay publishes a packet of dev, sequence seq, as edge adapter edge of
// org, and returns the hook's error (nil: PUBACK and delivered, which
// must not happen for envelopes).
func (e *env) relay(org, edge string, seq uint64, body []byte) error {
	e.t.Helper()
	return e.relayTo(wire.Topic(org, ProtoPIOT), edge, seq, body)
}

// relayTo is relay to any topic.
func (e *env) relayTo(topic, edge string, seq uint64, body []byte) error {
	e.t.Helper()
	payload, err := json.Marshal(Envelope{Edge: edge, Seq: seq, RX: time.Now().UnixMilli(), Body: body})
	if err != nil {
		e.t.Fatal(err)
	}
	_, err = e.h.OnPublish(nil, packets.Packet{TopicName: topic, Payload: payload,
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}})
	return err
}

func (e *env) packet(dev string, seq int, at time.Time) []byte {
	e.t.Helper()
	b, err := devsim.EncodePIOT(dev, seq, at, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func acked(err error) bool { return errors.Is(err, packets.CodeSuccessIgnore) }

func TestRelayedPacketsRegisterIntoTheOrgAndDropResends(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	base := time.Unix(1_764_000_000, 0)

	// First contact registers the device and its sensor into acme,
	// disabled: acknowledged, nothing published.
	if err := e.relay("acme", "edge1", 1, e.packet("dev1", 1, base)); !acked(err) {
		t.Fatalf("first packet: %v", err)
	}
	for _, name := range []string{"dev1", devsim.SensorName("dev1")} {
		th, ok := e.ce.Core.ThingByPiotID(name)
		if !ok || th.OrgID != e.ce.Org.ID || th.Enabled {
			t.Fatalf("%s: registered %v, org %v, enabled %v", name, ok, th.OrgID, th.Enabled)
		}
		on := true
		if _, err := e.ce.Core.UpdateThing(ctx, e.ce.Admin, core.ThingUpdate{ID: th.ID, Enabled: &on}); err != nil {
			t.Fatal(err)
		}
	}
	if st := e.h.Stats(); st[ResultNotStored] != 1 {
		t.Fatalf("stats %v", st)
	}

	// A burst is not rate limited; resends (seq not above the last one
	// processed) are dropped, also after a restart.
	for seq := uint64(2); seq <= 5; seq++ {
		if err := e.relay("acme", "edge1", seq, e.packet("dev1", int(seq), base.Add(time.Duration(seq)*time.Minute))); !acked(err) {
			t.Fatalf("seq %d: %v", seq, err)
		}
	}
	if err := e.relay("acme", "edge1", 4, e.packet("dev1", 4, base)); !acked(err) {
		t.Fatalf("resend: %v", err)
	}
	e.reopen()
	if err := e.relay("acme", "edge1", 5, e.packet("dev1", 5, base)); !acked(err) {
		t.Fatalf("resend after restart: %v", err)
	}
	// Another edge adapter has its own sequence.
	if err := e.relay("acme", "edge2", 1, e.packet("dev1", 6, base.Add(6*time.Minute))); !acked(err) {
		t.Fatalf("edge2: %v", err)
	}
	topic := "org/acme/" + devsim.SensorName("dev1") + "/value"
	if got, want := fmt.Sprint(e.sink.values(topic)), "[2 3 4 5 6]"; got != want {
		t.Fatalf("values %s, want %s", got, want)
	}
	e.sink.mu.Lock()
	for _, m := range e.sink.msgs {
		if m.Topic == topic && m.At.Sub(base) != time.Duration(mustAtoi(t, string(m.Payload)))*time.Minute {
			t.Fatalf("value %s stored as measured at %v", m.Payload, m.At)
		}
	}
	e.sink.mu.Unlock()
	if st := e.h.Stats(); st[ResultDuplicate] != 1 || st[ResultProcessed] != 1 { // since the restart
		t.Fatalf("stats %v", st)
	}
}

func mustAtoi(t *testing.T, s string) int {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRelayRefusesAndRetries(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other, err := e.ce.Core.CreateOrg(ctx, e.ce.Admin, "other", "")
	if err != nil {
		t.Fatal(err)
	}
	// dev9 belongs to acme: an edge adapter of "other" cannot feed it.
	if err := e.relay("acme", "e", 1, e.packet("dev9", 1, time.Now())); !acked(err) {
		t.Fatal(err)
	}
	if err := e.relay(other.Name, "e", 1, e.packet("dev9", 2, time.Now())); !acked(err) {
		t.Fatal(err)
	}
	if st := e.ad.Stats(); st[adapter.ReasonForeignOrg] != 1 {
		t.Fatalf("adapter stats %v", st)
	}

	// Malformed envelopes are acknowledged and counted, never retried.
	for _, p := range []string{`nope`, `{"edge":"","seq":1,"body":"eA=="}`, `{"edge":"e","seq":0,"body":"eA=="}`, `{"edge":"e","seq":3}`} {
		_, err := e.h.OnPublish(nil, packets.Packet{TopicName: wire.Topic("acme", ProtoPIOT), Payload: []byte(p)})
		if !acked(err) {
			t.Fatalf("%s: %v", p, err)
		}
	}
	if st := e.h.Stats(); st[ResultBadEnvelope] != 4 || st[ResultRefused] != 1 {
		t.Fatalf("stats %v", st)
	}

	// A failure to journal is not acknowledged and the packet is not
	// marked processed: its resend goes through.
	th, _ := e.ce.Core.ThingByPiotID("dev9")
	on := true
	if _, err := e.ce.Core.UpdateThing(ctx, e.ce.Admin, core.ThingUpdate{ID: th.ID, Enabled: &on}); err != nil {
		t.Fatal(err)
	}
	e.sink.mu.Lock()
	e.sink.fail = true
	e.sink.mu.Unlock()
	if err := e.relay("acme", "e", 2, e.packet("dev9", 3, time.Now())); !errors.Is(err, packets.ErrRejectPacket) {
		t.Fatalf("failed journal: %v", err)
	}
	// Packets after the refused one are not processed before it: the
	// edge adapter resends from the refused one, which must not then
	// look like a duplicate.
	e.sink.mu.Lock()
	e.sink.fail = false
	e.sink.mu.Unlock()
	if err := e.relay("acme", "e", 3, e.packet("dev9", 4, time.Now())); !errors.Is(err, packets.ErrRejectPacket) {
		t.Fatalf("packet after a refused one: %v", err)
	}
	if err := e.relay("acme", "e", 2, e.packet("dev9", 3, time.Now())); !acked(err) {
		t.Fatal(err)
	}
	if err := e.relay("acme", "e", 3, e.packet("dev9", 4, time.Now())); !acked(err) {
		t.Fatal(err)
	}
	if got := e.sink.values("org/acme/dev9/available"); len(got) != 2 {
		t.Fatalf("device published %d times, want 2", len(got))
	}

	// A refused packet whose mark cannot be journaled waits for its
	// resend too.
	e.sink.mu.Lock()
	e.sink.fail = true
	e.sink.mu.Unlock()
	if err := e.relay(other.Name, "e", 2, e.packet("dev9", 5, time.Now())); !errors.Is(err, packets.ErrRejectPacket) {
		t.Fatalf("refused packet without its mark: %v", err)
	}
	e.sink.mu.Lock()
	e.sink.fail = false
	e.sink.mu.Unlock()
	if err := e.relay(other.Name, "e", 2, e.packet("dev9", 5, time.Now())); !acked(err) || e.sink.Last(other.ID.Hex()+"/e") != 2 {
		t.Fatalf("resent refused packet: %v, mark %d", err, e.sink.Last(other.ID.Hex()+"/e"))
	}

	// Other topics pass untouched.
	if _, err := e.h.OnPublish(nil, packets.Packet{TopicName: "org/acme/dev9/value"}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, ok := parseTopic("org/acme/$adapter/piot/x"); ok {
		t.Fatal("deeper topic parsed as relay topic")
	}
}

// blockingHandler holds every packet until released, then publishes it.
type blockingHandler struct {
	entered chan struct{}
	release chan struct{}
	sink    *sink
}

func (b *blockingHandler) Handle(ctx context.Context, _ []byte, src adapter.Source) adapter.Outcome {
	b.entered <- struct{}{}
	<-b.release
	if err := b.sink.publish(ctx, src.With); err != nil {
		return adapter.Outcome{Status: 503}
	}
	return adapter.Outcome{Status: 200}
}

// The broker can still be inside OnPublish when the appliance closes the
// hook: Close waits for that packet (the ingest stops after it), so it is
// recorded and its resend after the restart is a duplicate; packets
// arriving after Close are left for the edge adapter to resend.
func TestCloseWaitsForPacketsInProcess(t *testing.T) {
	e := newEnv(t)
	bh := &blockingHandler{entered: make(chan struct{}), release: make(chan struct{}), sink: e.sink}
	h, err := New(Config{}, Deps{Core: e.ce.Core, Marks: e.sink, Handlers: map[string]Handler{ProtoPIOT: bh}})
	if err != nil {
		t.Fatal(err)
	}
	e.h.Close()
	e.h = h
	body := e.packet("dev1", 1, time.Now())
	first := make(chan error, 1)
	go func() { first <- e.relay("acme", "edge1", 1, body) }()
	<-bh.entered
	closed := make(chan error, 1)
	go func() { closed <- h.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a packet was in process", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := e.relay("acme", "edge1", 2, e.packet("dev1", 2, time.Now())); acked(err) || err == nil {
		t.Fatalf("packet after Close was acknowledged: %v", err)
	}
	close(bh.release)
	if err := <-first; !acked(err) {
		t.Fatalf("packet in process: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	e.h = nil
	e.reopen()
	if err := e.relay("acme", "edge1", 1, body); !acked(err) || e.h.Stats()[ResultDuplicate] != 1 {
		t.Fatalf("resend after restart: %v, stats %v", err, e.h.Stats())
	}
}

// An edge adapter logged in with a device's own credentials publishes
// under that thing's topics, and only that device's packets are taken.
func TestDeviceCredentialsRelayOnlyTheirDevice(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now()
	for k, dev := range []string{"dev1", "dev2"} {
		if err := e.relay("acme", "setup", uint64(k+1), e.packet(dev, 1, now)); !acked(err) {
			t.Fatal(err)
		}
		for _, name := range []string{dev, devsim.SensorName(dev)} {
			th, _ := e.ce.Core.ThingByPiotID(name)
			on := true
			if _, err := e.ce.Core.UpdateThing(ctx, e.ce.Admin, core.ThingUpdate{ID: th.ID, Enabled: &on}); err != nil {
				t.Fatal(err)
			}
		}
	}
	own := wire.DeviceTopic("acme", "dev1", ProtoPIOT)
	if err := e.relayTo(own, "gw", 1, e.packet("dev1", 2, now)); !acked(err) {
		t.Fatalf("own packet: %v", err)
	}
	if err := e.relayTo(own, "gw", 2, e.packet("dev2", 2, now)); !acked(err) {
		t.Fatalf("other device's packet: %v", err)
	}
	if err := e.relayTo(wire.DeviceTopic("acme", "nosuch", ProtoPIOT), "gw2", 1, e.packet("dev1", 3, now)); !acked(err) {
		t.Fatalf("unknown thing: %v", err)
	}
	if got := fmt.Sprint(e.sink.values("org/acme/" + devsim.SensorName("dev1") + "/value")); got != "[2]" {
		t.Fatalf("dev1 values %s", got)
	}
	if got := e.sink.values("org/acme/" + devsim.SensorName("dev2") + "/value"); len(got) != 0 {
		t.Fatalf("dev2 fed through dev1's credentials: %v", got)
	}
	if st := e.ad.Stats(); st[adapter.ReasonForeignDevice] != 1 {
		t.Fatalf("adapter stats %v", st)
	}
	if st := e.h.Stats(); st[ResultNotStored] != 2 || st[ResultProcessed] != 1 || st[ResultRefused] != 2 {
		t.Fatalf("relay stats %v", st)
	}
	if org, thing, proto, ok := parseTopic(own); !ok || org != "acme" || thing != "dev1" || proto != ProtoPIOT {
		t.Fatalf("parseTopic(%s) = %s %s %s %v", own, org, thing, proto, ok)
	}
}

// A packet that cannot be taken is not acknowledged: MQTT 5 clients get a
// negative PUBACK, older ones have their connection cut so that they
// resend at once.
func TestRetryCutsMQTT3Connections(t *testing.T) {
	e := newEnv(t)
	srv := mqtt.New(&mqtt.Options{InlineClient: false})
	payload, err := json.Marshal(Envelope{Edge: "e", Seq: 1, RX: time.Now().UnixMilli(), Body: e.packet("dev1", 1, time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	pk := packets.Packet{TopicName: wire.Topic("acme", ProtoPIOT), Payload: payload, FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}}
	e.sink.mu.Lock()
	e.sink.fail = true
	e.sink.mu.Unlock()
	for _, v := range []byte{4, 5} {
		c1, c2 := net.Pipe()
		defer c2.Close()
		cl := srv.NewClient(c1, "t", fmt.Sprint("edge-v", v), false)
		cl.Properties.ProtocolVersion = v
		_, err := e.h.OnPublish(cl, pk)
		switch {
		case v == 4 && (!errors.Is(err, packets.ErrRejectPacket) || !cl.Closed()):
			t.Errorf("MQTT 3.1.1: %v, closed %v", err, cl.Closed())
		case v == 5 && (!errors.Is(err, packets.ErrUnspecifiedError) || cl.Closed()):
			t.Errorf("MQTT 5: %v, closed %v", err, cl.Closed())
		}
	}
}
