package ingest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
)

// publish sends a message through the hook as the broker would for a
// network client, and reports whether the broker may acknowledge it.
func publish(t testing.TB, ing *Ingest, topic, payload string, qos byte) {
	t.Helper()
	cl := &mqtt.Client{}
	cl.Properties.ProtocolVersion = 4
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}, TopicName: topic, Payload: []byte(payload)}
	if _, err := ing.Hook().OnPublish(cl, pk); err != nil {
		t.Fatalf("OnPublish %s: %v", topic, err)
	}
}

type setup struct {
	sensor, sw, tracker core.Thing
}

func (e *env) things() setup {
	return setup{
		sensor: e.thing(thingSpec{name: "T1", typ: "sensor", sensor: &core.SensorUpdate{MeasurementTopic: ptr("value")}}),
		sw:     e.thing(thingSpec{name: "relay", typ: "switch", sw: &core.SwitchUpdate{StateTopic: ptr("state"), StateOn: ptr("ON"), StateOff: ptr("OFF")}}),
		tracker: e.thing(thingSpec{name: "gps", typ: "device", update: core.ThingUpdate{BatteryMQTTTopic: ptr("battery"),
			LocMQTTTopic: ptr("location"), LocMQTTLatValue: ptr("lat"), LocMQTTLngValue: ptr("lng")}}),
	}
}

// Through the hook, every accepted reading reaches thing state in the
// store and the history; the journal checkpoint follows.
func TestHookToStoreAndHistory(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{}, nil)
	s := e.things()
	start := time.Now().Add(-time.Second).Unix()
	for k := 0; k < 20; k++ {
		publish(t, ing, "org/acme/T1/value", fmt.Sprint(20+k), 1)
	}
	publish(t, ing, "org/acme/relay/state", "ON", 1)
	publish(t, ing, "org/acme/gps/battery", "77", 0)
	publish(t, ing, "org/acme/gps/location", `{"lat":50,"lng":14}`, 1)
	publish(t, ing, "org/acme/nobody/listens", "x", 1)
	publish(t, ing, "$SYS/broker/uptime", "5", 0)
	if err := ing.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Unix() + 1
	if th := e.stored(s.sensor.ID); th.Sensor.Value != "39" || th.LastSeen < start {
		t.Fatalf("stored sensor %+v", th.Sensor)
	}
	if th := e.stored(s.sw.ID); !th.Switch.State {
		t.Fatal("stored switch")
	}
	if th := e.stored(s.tracker.ID); th.BatteryLevel != 77 || th.LocLat != 50 {
		t.Fatalf("stored tracker %+v", th)
	}
	if r := e.readings(s.sensor.ID, history.KindSensor, start, end); len(r) != 20 || r[19].Value != "39" {
		t.Fatalf("sensor history %+v", r)
	}
	if r := e.readings(s.sw.ID, history.KindSwitch, start, end); len(r) != 1 || r[0].Value != "1" {
		t.Fatalf("switch history %+v", r)
	}
	if r := e.readings(s.tracker.ID, history.KindBattery, start, end); len(r) != 1 || r[0].Value != "77" {
		t.Fatalf("battery history %+v", r)
	}
	if r := e.readings(s.tracker.ID, history.KindLocation, start, end); len(r) != 1 {
		t.Fatalf("location history %+v", r)
	}
	st := ing.Stats()
	if st[Key{RuleJournal, Journaled}] != 23 || st[Key{RuleMessage, IgnoredNoMatch}] != 1 || st[Key{RuleMessage, IgnoredNotOrg}] != 1 {
		t.Fatalf("stats %v", st)
	}
	if st[Key{RuleHistory, PointsStored}] != 23 {
		t.Fatalf("points stored %d", st[Key{RuleHistory, PointsStored}])
	}
	if ing.j.Checkpoint() != ing.j.Durable() {
		t.Fatalf("checkpoint %d behind durable %d", ing.j.Checkpoint(), ing.j.Durable())
	}
	// A publish after Stop is refused, so the broker does not ack it.
	cl := &mqtt.Client{}
	if _, err := ing.Hook().OnPublish(cl, packets.Packet{TopicName: "org/acme/T1/value", Payload: []byte("1"), FixedHeader: packets.FixedHeader{Qos: 1}}); err != packets.ErrRejectPacket {
		t.Fatalf("after stop: %v", err)
	}
	cl.Properties.ProtocolVersion = 5
	if _, err := ing.Hook().OnPublish(cl, packets.Packet{TopicName: "org/acme/T1/value", Payload: []byte("1"), FixedHeader: packets.FixedHeader{Qos: 1}}); err != packets.ErrUnspecifiedError {
		t.Fatalf("after stop, v5: %v", err)
	}
}

// A kill after PUBACK but before anything reached the store: the next
// start replays the journal and rebuilds thing state and history.
func TestReplayAfterCrashRestoresStateAndHistory(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{}, func(i *Ingest) { i.noFlush = true })
	s := e.things()
	start := time.Now().Add(-time.Second).Unix()
	for k := 0; k < 50; k++ {
		publish(t, ing, "org/acme/T1/value", fmt.Sprint(k), 1)
	}
	publish(t, ing, "org/acme/relay/state", "ON", 1)
	publish(t, ing, "org/acme/gps/battery", "64", 1)
	if got := e.get(s.sensor.ID).Sensor.Value; got != "49" {
		t.Fatalf("live state %q", got)
	}
	ing.crash()
	if th := e.stored(s.sensor.ID); th.Sensor.Value != "" {
		t.Fatalf("state reached the store before the crash: %+v", th.Sensor)
	}

	// Restart: fresh core and history from the store, same data directory.
	e.openCore()
	ing2 := e.start(Config{}, nil)
	if ing2.Stats()[Key{RuleJournal, Replayed}] != 52 {
		t.Fatalf("replayed %d", ing2.Stats()[Key{RuleJournal, Replayed}])
	}
	// State is back in memory at once (before the broker would start).
	if th := e.get(s.sensor.ID); th.Sensor.Value != "49" {
		t.Fatalf("replayed state %q", th.Sensor.Value)
	}
	if err := ing2.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Unix() + 1
	if th := e.stored(s.sensor.ID); th.Sensor.Value != "49" {
		t.Fatalf("stored after replay %q", th.Sensor.Value)
	}
	if th := e.stored(s.tracker.ID); th.BatteryLevel != 64 {
		t.Fatalf("battery after replay %d", th.BatteryLevel)
	}
	r := e.readings(s.sensor.ID, history.KindSensor, start, end)
	if len(r) != 50 {
		t.Fatalf("history after replay: %d points", len(r))
	}
	// Everything is stored: a third start replays nothing.
	e.openCore()
	ing3 := e.start(Config{}, nil)
	if n := ing3.Stats()[Key{RuleJournal, Replayed}]; n != 0 {
		t.Fatalf("replayed again: %d", n)
	}
}

// A kill after the history was written but before the checkpoint moved:
// the replay must not duplicate points.
func TestReplayDoesNotDuplicateHistory(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{FlushInterval: time.Hour}, nil) // no checkpoint during the test
	s := e.things()
	start := time.Now().Add(-time.Second).Unix()
	for k := 0; k < 30; k++ {
		publish(t, ing, "org/acme/T1/value", fmt.Sprint(k), 1)
	}
	eventually(t, func() bool { return ing.Stats()[Key{RuleHistory, PointsStored}] == 30 })
	ing.crash()

	e.openCore()
	ing2 := e.start(Config{}, nil)
	if n := ing2.Stats()[Key{RuleJournal, Replayed}]; n != 30 {
		t.Fatalf("replayed %d", n)
	}
	if err := ing2.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := e.readings(s.sensor.ID, history.KindSensor, start, time.Now().Unix()+1)
	if len(r) != 30 {
		t.Fatalf("%d points after replay, want 30", len(r))
	}
}

// Segments are deleted once their records are stored.
func TestCheckpointDeletesSegments(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{SegmentBytes: 4096}, nil)
	e.things()
	for k := 0; k < 300; k++ {
		publish(t, ing, "org/acme/T1/value", fmt.Sprint(k), 1)
	}
	eventually(t, func() bool { return ing.j.Checkpoint() == ing.j.Durable() && ing.j.Segments() == 1 })
	if err := ing.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(e.dir, "journal", "*.wal"))
	if len(files) != 1 {
		t.Fatalf("%d segment files left", len(files))
	}
	st, _ := os.Stat(filepath.Join(e.dir, "journal"))
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("journal dir mode %v", st.Mode().Perm())
	}
}

// sensor points carry the thing's store_mysqldb_interval, so the history
// keeps the first value per interval.
func TestStoreInterval(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{}, nil)
	s := e.thing(thingSpec{name: "T1", typ: "sensor", update: core.ThingUpdate{StoreMySQLDBInterval: ptr(int64(60))},
		sensor: &core.SensorUpdate{MeasurementTopic: ptr("value")}})
	for k := 0; k < 6; k++ {
		if err := ing.Submit("org/acme/T1/value", []byte(fmt.Sprint(k)), base.Add(time.Duration(k*20)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := ing.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := e.readings(s.ID, history.KindSensor, base.Unix(), base.Unix()+3600)
	if len(r) != 2 || r[0].Value != "0" || r[1].Value != "3" {
		t.Fatalf("kept %+v", r)
	}
	if e.stored(s.ID).Sensor.Value != "5" {
		t.Fatal("state must still follow every value")
	}
}

func TestRecordRoundTrip(t *testing.T) {
	at := time.Unix(1762300000, 123456789)
	b := encodeRecord("org/a/b", []byte("payload"), at)
	topic, payload, got, err := decodeRecord(b)
	if err != nil || topic != "org/a/b" || string(payload) != "payload" || !got.Equal(at) {
		t.Fatalf("%q %q %v %v", topic, payload, got, err)
	}
	for _, bad := range [][]byte{nil, {2, 0, 0, 0, 0, 0, 0, 0, 0, 1}, b[:9], append(b[:9:9], 0xff)} {
		if _, _, _, err := decodeRecord(bad); err == nil {
			t.Errorf("%x decoded", bad)
		}
	}
}

// core.FlushState writes many dirty things at once; FerretDB v1.24
// deadlocks on update commands of about 100 statements or more, so
// every bulk write goes in small commands (store.BulkWrite).
func TestFlushManyThings(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{FlushInterval: time.Hour}, nil)
	var ids []core.ID
	for k := 0; k < 150; k++ {
		th := e.thing(thingSpec{name: fmt.Sprintf("T%d", k), typ: "sensor", sensor: &core.SensorUpdate{MeasurementTopic: ptr("value")}})
		ids = append(ids, th.ID)
	}
	for k := range ids {
		publish(t, ing, fmt.Sprintf("org/acme/T%d/value", k), "1", 1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ing.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := core.New(context.Background(), e.st, core.Config{BcryptCost: 4, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if th, err := c.Thing(core.System(), id); err != nil || th.Sensor.Value != "1" {
			t.Fatalf("state not flushed: %v", err)
		}
	}
}

// A mark journaled with SubmitAll is known after a crash, whether the
// checkpoint passed it (the marks file) or not (replay), and a batch with
// an invalid mark journals nothing.
func TestMarksSurviveCrashAndCheckpoint(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{FlushInterval: time.Hour}, nil) // checkpoints only when the test says
	s := e.things()
	start := time.Now().Add(-time.Second).Unix()
	submit := func(ing *Ingest, key string, seq uint64, value string) error {
		return ing.SubmitAll([]Message{{Topic: "org/acme/T1/value", Payload: []byte(value), At: time.Now()}, Mark(key, seq)})
	}
	if err := submit(ing, "edge-f", 7, "1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return ing.histSeq.Load() == ing.j.Durable() })
	if err := ing.flush(context.Background()); err != nil || ing.j.Checkpoint() != ing.j.Durable() {
		t.Fatalf("flush: %v, checkpoint %d of %d", err, ing.j.Checkpoint(), ing.j.Durable())
	}
	if err := submit(ing, "edge-a", 9, "2"); err != nil {
		t.Fatal(err)
	}
	if err := submit(ing, "edge-b", 3, "3"); err != nil {
		t.Fatal(err)
	}
	if err := submit(ing, "bad key", 4, "4"); err == nil {
		t.Fatal("a mark with a space in its key was journaled")
	}
	if err := ing.Submit(Mark("edge-b", 99).Topic, []byte("99"), time.Now()); err != nil {
		t.Fatal(err)
	}
	ing.crash() // the marks after the checkpoint are only in the journal

	e.openCore()
	ing2 := e.start(Config{}, nil)
	for key, want := range map[string]uint64{"edge-f": 7, "edge-a": 9, "edge-b": 3, "edge-c": 0} {
		if got := ing2.LastMark(key); got != want {
			t.Errorf("mark %s = %d after the crash, want %d", key, got, want)
		}
	}
	if err := ing2.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := e.readings(s.sensor.ID, history.KindSensor, start, time.Now().Unix()+1); len(r) != 3 {
		t.Fatalf("%d readings, want 3 (marks are not readings): %+v", len(r), r)
	}
	e.openCore()
	ing3 := e.start(Config{}, nil)
	if got := ing3.LastMark("edge-b"); got != 3 || ing3.Stats()[Key{RuleJournal, Replayed}] != 0 {
		t.Fatalf("after a clean stop: mark %d, replayed %d", got, ing3.Stats()[Key{RuleJournal, Replayed}])
	}
}

// The relay's view of the marks: Record journals a mark alone, Message is
// the mark to journal with a packet, and Last reads back both.
func TestRelayMarks(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{}, nil)
	m := ing.RelayMarks()
	if got := m.Last("edge-r"); got != 0 {
		t.Fatalf("no mark yet: %d", got)
	}
	if err := m.Record("edge-r", 5); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return m.Last("edge-r") == 5 })
	msg := m.Message("edge-r", 6)
	if !IsMark(msg.Topic) {
		t.Fatalf("Message is not a mark: %q", msg.Topic)
	}
	if err := ing.Publish(context.Background(), []Message{msg}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return m.Last("edge-r") == 6 })
	if err := m.Record("bad key", 7); err == nil {
		t.Fatal("a mark with a space in its key was journaled")
	}
}
