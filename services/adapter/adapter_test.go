package adapter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/core/coretest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const testKey = "1234567890123456"

type pub struct{ topic, payload string }

type recorder struct {
	mu   sync.Mutex
	msgs []pub
	ats  []time.Time // measurement time of each message
	fail func(topic string) error
}

func (r *recorder) publish(ctx context.Context, msgs []Message) error {
	for _, m := range msgs {
		if err := r.one(ctx, m.Topic, m.Payload, m.At); err != nil {
			return err
		}
	}
	return nil
}

func (r *recorder) one(_ context.Context, topic string, payload []byte, at time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(topic); err != nil {
			return err
		}
	}
	r.msgs = append(r.msgs, pub{topic, string(payload)})
	r.ats = append(r.ats, at)
	return nil
}

func (r *recorder) take() []pub {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.msgs
	r.msgs = nil
	return out
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	c     *core.Core
	admin core.Actor
	org   core.Org
	rec   *recorder
	clk   *clock
	a     *Adapter
	h     http.Handler
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	ce := coretest.New(t)
	c, admin, org := ce.Core, ce.Admin, ce.Org
	e := &env{t: t, c: c, admin: admin, org: org, rec: &recorder{}, clk: &clock{t: time.Unix(1_700_000_000, 0)}}
	cfg.Logger = quiet
	cfg.Now = e.clk.now
	a, err := New(cfg, Deps{Core: c, Publish: PublisherFunc(e.rec.publish)})
	if err != nil {
		t.Fatal(err)
	}
	e.a, e.h = a, a.Handler()
	return e
}

// post sends body and returns status, decoded answer and the response.
func (e *env) post(body []byte) (int, answer, *httptest.ResponseRecorder) {
	e.t.Helper()
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/adapter", bytes.NewReader(body)))
	var ans answer
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		e.t.Fatalf("content type %q", ct)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil {
		e.t.Fatalf("answer %q: %v", w.Body.String(), err)
	}
	return w.Code, ans, w
}

// send posts a plaintext packet after moving the clock past the interval.
func (e *env) send(js string) (int, answer) {
	e.t.Helper()
	e.clk.advance(time.Minute)
	code, ans, _ := e.post([]byte(js))
	return code, ans
}

func (e *env) thing(piotID string) core.Thing {
	e.t.Helper()
	th, ok := e.c.ThingByPiotID(piotID)
	if !ok {
		e.t.Fatalf("thing %q not registered", piotID)
	}
	return th
}

func (e *env) assign(piotID string, enabled bool) {
	e.t.Helper()
	th := e.thing(piotID)
	if _, err := e.c.UpdateThing(context.Background(), e.admin, core.ThingUpdate{
		ID: th.ID, SetOrg: true, OrgID: e.org.ID, Enabled: &enabled,
	}); err != nil {
		e.t.Fatal(err)
	}
}

func wantPubs(t *testing.T, got []pub, want ...pub) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("publications\n got %v\nwant %v", got, want)
	}
}

func TestNewValidatesKey(t *testing.T) {
	_, err := New(Config{AESKey: "short"}, Deps{})
	if err == nil || !strings.Contains(err.Error(), "16 bytes") {
		t.Fatalf("err = %v", err)
	}
}

func TestGetIs405(t *testing.T) {
	e := newEnv(t, Config{})
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/adapter", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("code %d", w.Code)
	}
	if e.a.Stats()[ReasonMethod] != 1 {
		t.Fatalf("stats %v", e.a.Stats())
	}
}

func TestPlaintextUnknownDeviceRegisters(t *testing.T) {
	e := newEnv(t, Config{})
	code, ans := e.send(`{"device":"Device123"}`)
	if code != http.StatusAccepted || ans.Result != ResultNotAssigned {
		t.Fatalf("code %d %+v", code, ans)
	}
	d := e.thing("Device123")
	if d.Name != "Device123" || d.Type != core.ThingDevice || d.AvailabilityTopic != "available" || d.Enabled || !d.OrgID.IsZero() {
		t.Fatalf("device %+v", d)
	}
	wantPubs(t, e.rec.take())
	// Known but disabled.
	e.assign("Device123", false)
	code, ans = e.send(`{"device":"Device123"}`)
	if code != http.StatusAccepted || ans.Result != ResultDisabled {
		t.Fatalf("code %d %+v", code, ans)
	}
	wantPubs(t, e.rec.take())
	s := e.a.Stats()
	if s[ReasonNotAssigned] != 1 || s[ReasonDisabled] != 1 {
		t.Fatalf("stats %v", s)
	}
}

func TestShortNotation(t *testing.T) {
	e := newEnv(t, Config{})
	code, _ := e.send(`{"device":"ignored","d":"dev1","r":[{"a":"A1","t":1.5}],"readings":[{"address":"zzz","t":2}]}`)
	if code != http.StatusAccepted {
		t.Fatalf("code %d", code)
	}
	dev := e.thing("dev1")
	s := e.thing("TA1")
	if s.ParentID != dev.ID {
		t.Fatal("parent")
	}
	if _, ok := e.c.ThingByPiotID("Tzzz"); ok {
		t.Fatal("long readings should be replaced by r")
	}
	if _, ok := e.c.ThingByPiotID("ignored"); ok {
		t.Fatal("d should replace device")
	}
}

func TestEncrypted(t *testing.T) {
	e := newEnv(t, Config{AESKey: testKey})
	ct, err := encryptECB([]byte(testKey), []byte(`{"device":"enc1","wifi-ssid":"home"}`))
	if err != nil {
		t.Fatal(err)
	}
	if code, ans, _ := e.post(ct); code != http.StatusAccepted || ans.Result != ResultNotAssigned {
		t.Fatalf("code %d %+v", code, ans)
	}
	e.assign("enc1", true)
	e.clk.advance(time.Minute)
	if code, ans, _ := e.post(ct); code != http.StatusOK || ans != (answer{}) {
		t.Fatalf("code %d %+v", code, ans)
	}
	wantPubs(t, e.rec.take(),
		pub{"org/acme/enc1/available", "yes"},
		pub{"org/acme/enc1/net/wifi/ssid", "home"})
	// Plaintext still works with a key configured.
	if code, _ := e.send(`{"device":"enc1"}`); code != http.StatusOK {
		t.Fatalf("plaintext with key: %d", code)
	}
}

func TestEncryptedErrors(t *testing.T) {
	e := newEnv(t, Config{AESKey: testKey})
	key := []byte(testKey)
	// Bad padding: encrypt a block whose last byte is 0 (invalid pad).
	blk := []byte(`{"device":"bad"}`) // 16 bytes, no padding
	ct, _ := encryptECB(key, blk)
	ct = ct[:16] // drop the padding block: last plaintext byte is '}'
	if code, ans, _ := e.post(ct); code != http.StatusBadRequest || !strings.Contains(ans.Error, "padding") {
		t.Fatalf("bad padding: %d %+v", code, ans)
	}
	if _, ok := e.c.ThingByPiotID("bad"); ok {
		t.Fatal("padding error must stop processing")
	}
	// Wrong length.
	if code, _, _ := e.post([]byte("not json at all")); code != http.StatusBadRequest {
		t.Fatalf("length: %d", code)
	}
	// Wrong key: padding (almost surely) or JSON fails.
	ct, _ = encryptECB([]byte("6543210987654321"), []byte(`{"device":"wrongkey"}`))
	if code, _, _ := e.post(ct); code != http.StatusBadRequest {
		t.Fatalf("wrong key: %d", code)
	}
	// Valid padding, not JSON.
	ct, _ = encryptECB(key, []byte("hello"))
	if code, _, _ := e.post(ct); code != http.StatusBadRequest {
		t.Fatalf("not json: %d", code)
	}
	// Broken plaintext JSON with a key configured: the answer says the
	// JSON is invalid, whatever the length (issue 11).
	for _, body := range []string{`{"device":"x",}`, `{"device":"plain","readings":[ }`} {
		code, ans, _ := e.post([]byte(body))
		if code != http.StatusBadRequest || !strings.Contains(ans.Error, "invalid packet") || strings.Contains(ans.Error, "decryption") {
			t.Fatalf("broken JSON %q (%d bytes): %d %+v", body, len(body), code, ans)
		}
	}
	s := e.a.Stats()
	if s[ReasonBadPadding] < 1 || s[ReasonBadLength] != 1 || s[ReasonBadJSON] < 3 {
		t.Fatalf("stats %v", s)
	}
}

func TestNoKeyNotJSON(t *testing.T) {
	e := newEnv(t, Config{})
	for _, b := range []string{"", "garbage", `{"device":`, `["x"]`, `{"device":"x","wifi-strength":"high"}`} {
		if code, _, _ := e.post([]byte(b)); code != http.StatusBadRequest {
			t.Fatalf("%q: %d", b, code)
		}
	}
	if code, ans := e.send(`{"device":""}`); code != http.StatusBadRequest || !strings.Contains(ans.Error, "empty") {
		t.Fatalf("empty device: %d %+v", code, ans)
	}
	if code, _ := e.send(`{"device":"a/b"}`); code != http.StatusBadRequest {
		t.Fatalf("invalid name: %d", code)
	}
	if code, _ := e.send(`{"device":"ok","r":[{"a":"x+y","t":1}]}`); code != http.StatusBadRequest {
		t.Fatalf("invalid address: %d", code)
	}
	if code, _ := e.send(`{"device":"dev9","unknown":[1,2],"time":1700000000} trailing`); code != http.StatusAccepted {
		t.Fatalf("unknown fields/trailing: %d", code)
	}
}

func TestAutoRegistersSensors(t *testing.T) {
	e := newEnv(t, Config{})
	code, _ := e.send(`{"device":"device01","readings":[{"address":"SensorAddr","t":4.5,"h":50,"p":101325}]}`)
	if code != http.StatusAccepted {
		t.Fatalf("code %d", code)
	}
	dev := e.thing("device01")
	for _, c := range []struct{ id, class, unit string }{
		{"TSensorAddr", "temperature", "C"},
		{"HSensorAddr", "humidity", "%"},
		{"PSensorAddr", "pressure", "Pa"},
	} {
		s := e.thing(c.id)
		if s.Name != c.id || s.Type != core.ThingSensor || s.Sensor.Class != c.class || s.Sensor.Unit != c.unit ||
			s.Sensor.MeasurementTopic != "value" || s.ParentID != dev.ID {
			t.Fatalf("sensor %+v", s)
		}
	}
	// Re-plugged into another device: the parent follows.
	if code, _ := e.send(`{"device":"device02","readings":[{"address":"SensorAddr","t":1}]}`); code != http.StatusAccepted {
		t.Fatalf("code %d", code)
	}
	if e.thing("TSensorAddr").ParentID != e.thing("device02").ID {
		t.Fatal("parent not moved")
	}
	// Lookup is by piot_id: a renamed sensor keeps receiving (§12.15).
	s := e.thing("TSensorAddr")
	name := "kitchen"
	if _, err := e.c.UpdateThing(context.Background(), e.admin, core.ThingUpdate{ID: s.ID, Name: &name}); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.send(`{"device":"device02","readings":[{"address":"SensorAddr","t":1}]}`); code != http.StatusAccepted {
		t.Fatalf("code %d", code)
	}
	if got := e.thing("TSensorAddr"); got.Name != "kitchen" || got.ID != s.ID {
		t.Fatalf("renamed sensor %+v", got)
	}
}

func TestAssignedDevicePublications(t *testing.T) {
	e := newEnv(t, Config{})
	e.send(`{"device":"device01","wifi-ssid":"SSID"}`)
	wantPubs(t, e.rec.take())
	e.assign("device01", true)
	if code, _ := e.send(`{"device":"device01","wifi-ssid":"SSID"}`); code != http.StatusOK {
		t.Fatalf("code %d", code)
	}
	wantPubs(t, e.rec.take(),
		pub{"org/acme/device01/available", "yes"},
		pub{"org/acme/device01/net/wifi/ssid", "SSID"})

	if code, _ := e.send(`{"device":"device01","ip":"10.0.0.7","wifi-ssid":"S","wifi-strength":57}`); code != http.StatusOK {
		t.Fatalf("code %d", code)
	}
	wantPubs(t, e.rec.take(),
		pub{"org/acme/device01/available", "yes"},
		pub{"org/acme/device01/net/ip", "10.0.0.7"},
		pub{"org/acme/device01/net/wifi/ssid", "S"},
		pub{"org/acme/device01/net/wifi/strength", "57.000000"})
}

func TestAssignedSensorPublications(t *testing.T) {
	e := newEnv(t, Config{})
	pkt := `{"device":"device01","readings":[{"address":"SensorAddr","t":4.5}]}`
	e.send(pkt)
	e.assign("device01", true)
	// Sensor unassigned: only the device publishes.
	e.send(pkt)
	wantPubs(t, e.rec.take(), pub{"org/acme/device01/available", "yes"})
	// Sensor assigned but disabled (§12.16): still nothing for it.
	e.assign("TSensorAddr", false)
	e.send(pkt)
	wantPubs(t, e.rec.take(), pub{"org/acme/device01/available", "yes"})
	e.assign("TSensorAddr", true)
	if code, _ := e.send(pkt); code != http.StatusOK {
		t.Fatalf("code %d", code)
	}
	wantPubs(t, e.rec.take(),
		pub{"org/acme/device01/available", "yes"},
		pub{"org/acme/TSensorAddr/available", "yes"},
		pub{"org/acme/TSensorAddr/value", "4.5"},
		pub{"org/acme/TSensorAddr/value/unit", "C"})
	e.send(`{"device":"device01","readings":[{"address":"SensorAddr","t":-13.7}]}`)
	if got := e.rec.take(); len(got) != 4 || got[2].payload != "-13.7" {
		t.Fatalf("got %v", got)
	}
}

func TestPublishErrorStops(t *testing.T) {
	e := newEnv(t, Config{})
	pkt := `{"device":"d1","ip":"1.2.3.4","wifi-ssid":"s"}`
	e.send(pkt)
	e.assign("d1", true)
	e.rec.fail = func(topic string) error {
		if strings.HasSuffix(topic, "net/ip") {
			return errors.New("journal full")
		}
		return nil
	}
	code, ans := e.send(pkt)
	if code != http.StatusServiceUnavailable || ans.Error == "" {
		t.Fatalf("code %d %+v", code, ans)
	}
	wantPubs(t, e.rec.take(), pub{"org/acme/d1/available", "yes"})
	if e.a.Stats()[ReasonPublishFailed] != 1 {
		t.Fatal(e.a.Stats())
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, Config{MinInterval: 2 * time.Second})
	if code, _ := e.send(`{"device":"dev1"}`); code != http.StatusAccepted {
		t.Fatalf("first %d", code)
	}
	e.clk.advance(500 * time.Millisecond)
	code, _, w := e.post([]byte(`{"device":"dev1"}`))
	if code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("second %d Retry-After %q", code, w.Header().Get("Retry-After"))
	}
	// A different device is not limited.
	if code, _, _ := e.post([]byte(`{"device":"dev2"}`)); code != http.StatusAccepted {
		t.Fatalf("other device %d", code)
	}
	// Rejected packets do not refresh the entry.
	e.clk.advance(1600 * time.Millisecond)
	if code, _, _ := e.post([]byte(`{"device":"dev1"}`)); code != http.StatusAccepted {
		t.Fatalf("after interval %d", code)
	}
	if e.a.Stats()[ReasonRateLimited] != 1 {
		t.Fatal(e.a.Stats())
	}
}

func TestUnassignedCap(t *testing.T) {
	e := newEnv(t, Config{MaxUnassigned: 3})
	for i := range 3 {
		if code, _ := e.send(fmt.Sprintf(`{"device":"dev%d"}`, i)); code != http.StatusAccepted {
			t.Fatalf("dev%d: %d", i, code)
		}
	}
	code, ans := e.send(`{"device":"dev3"}`)
	if code != http.StatusForbidden || ans.Error == "" {
		t.Fatalf("over cap: %d %+v", code, ans)
	}
	if _, ok := e.c.ThingByPiotID("dev3"); ok {
		t.Fatal("registered beyond the cap")
	}
	// Known devices keep being answered.
	if code, _ := e.send(`{"device":"dev0"}`); code != http.StatusAccepted {
		t.Fatalf("known device: %d", code)
	}
	// Assigning one frees a slot.
	e.assign("dev0", true)
	if code, _ := e.send(`{"device":"dev3"}`); code != http.StatusAccepted {
		t.Fatalf("after assigning: %d", code)
	}
	if e.a.Stats()[ReasonUnassignedCap] != 1 {
		t.Fatal(e.a.Stats())
	}
}

func TestOversize(t *testing.T) {
	e := newEnv(t, Config{MaxBody: 64})
	body := `{"device":"d","ip":"` + strings.Repeat("x", 100) + `"}`
	if code, _, _ := e.post([]byte(body)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("code %d", code)
	}
	if e.a.Stats()[ReasonTooLarge] != 1 {
		t.Fatal(e.a.Stats())
	}
}

func TestNameConflict(t *testing.T) {
	e := newEnv(t, Config{})
	if _, err := e.c.CreateThing(context.Background(), e.admin, "manual", core.ThingDevice); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.send(`{"device":"manual"}`); code != http.StatusConflict {
		t.Fatalf("code %d", code)
	}
}

// TestConcurrent sends many packets at once, some from the same device, some
// sharing sensors; run with -race.
func TestConcurrent(t *testing.T) {
	e := newEnv(t, Config{MinInterval: time.Hour})
	const n = 24
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"device":"cdev%d","r":[{"a":"shared","t":%d},{"a":"own%d","h":1}]}`, i%6, i, i%6)
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/adapter", strings.NewReader(body)))
			codes[i] = w.Code
		}()
	}
	wg.Wait()
	accepted, limited := 0, 0
	for _, c := range codes {
		switch c {
		case http.StatusAccepted:
			accepted++
		case http.StatusTooManyRequests:
			limited++
		default:
			t.Fatalf("unexpected code %d (%v)", c, codes)
		}
	}
	if accepted != 6 || limited != n-6 {
		t.Fatalf("accepted %d limited %d", accepted, limited)
	}
	if got := e.c.UnassignedThings(); got != 6+1+6 {
		t.Fatalf("things %d", got)
	}
	_ = e.thing("Tshared")
}

// A packet's own time is when its readings were measured, unless it lies
// in the future; packets without one are measured when they arrive.
func TestDeviceTimeIsHonoured(t *testing.T) {
	e := newEnv(t, Config{})
	e.send(`{"device":"dt","readings":[{"address":"1","t":20}]}`)
	e.assign("dt", true)
	e.assign("T1", true)
	e.rec.take()
	e.rec.mu.Lock()
	e.rec.ats = nil
	e.rec.mu.Unlock()

	past := e.clk.now().Add(-36 * time.Hour).Unix()
	for _, c := range []struct {
		time string
		want func() time.Time
	}{
		{fmt.Sprintf(`,"time":%d`, past), func() time.Time { return time.Unix(past, 0) }},
		{"", func() time.Time { return e.clk.now() }},
		{fmt.Sprintf(`,"time":%d`, e.clk.now().Add(time.Hour).Unix()), func() time.Time { return e.clk.now() }},
	} {
		if code, ans := e.send(`{"device":"dt","readings":[{"address":"1","t":21}]` + c.time + `}`); code != http.StatusOK {
			t.Fatalf("time %q: %d %+v", c.time, code, ans)
		}
		e.rec.mu.Lock()
		ats := e.rec.ats
		e.rec.ats = nil
		e.rec.mu.Unlock()
		if len(ats) == 0 {
			t.Fatalf("time %q: nothing published", c.time)
		}
		for _, at := range ats {
			if !at.Equal(c.want()) {
				t.Fatalf("time %q: published as measured at %v, want %v", c.time, at, c.want())
			}
		}
	}
}

// postTo posts body to /adapter with a query string.
func (e *env) postTo(query string, body []byte) (int, answer) {
	e.t.Helper()
	e.clk.advance(time.Minute)
	req := httptest.NewRequest(http.MethodPost, "/adapter"+query, bytes.NewReader(body))
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	var ans answer
	if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil {
		e.t.Fatalf("answer %q: %v", w.Body.String(), err)
	}
	return w.Code, ans
}

// A device with its own key is accepted only encrypted with it; its key
// opens no other device's packets.
func TestPerDeviceKeys(t *testing.T) {
	e := newEnv(t, Config{AESKey: testKey})
	const own = "kd-own-key-16byt"
	e.send(`{"device":"kd","readings":[{"address":"k1","t":1}]}`)
	e.send(`{"device":"other","readings":[{"address":"o1","t":1}]}`)
	for _, n := range []string{"kd", "Tk1", "other", "To1"} {
		e.assign(n, true)
	}
	if _, err := e.c.SetThingAESKey(context.Background(), e.admin, e.thing("kd").ID, own); err != nil {
		t.Fatal(err)
	}
	enc := func(key, js string) []byte {
		ct, err := encryptECB([]byte(key), []byte(js))
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	kd := `{"device":"kd","readings":[{"address":"k1","t":2}]}`
	for _, c := range []struct {
		name, query string
		body        []byte
		status      int
		reason      string
	}{
		{"own key", "", enc(own, kd), http.StatusOK, ""},
		{"own key, device named", "?device=kd", enc(own, kd), http.StatusOK, ""},
		{"plaintext", "", []byte(kd), http.StatusBadRequest, ReasonWrongKey},
		{"global key", "", enc(testKey, kd), http.StatusBadRequest, ReasonWrongKey},
		{"own key for another device", "", enc(own, `{"device":"other","readings":[{"address":"o1","t":3}]}`), http.StatusBadRequest, ReasonBadPadding},
		{"other device with the global key", "", enc(testKey, `{"device":"other","readings":[{"address":"o1","t":4}]}`), http.StatusOK, ""},
	} {
		before := e.a.Stats()[c.reason]
		code, ans := e.postTo(c.query, c.body)
		if code != c.status || c.reason != "" && e.a.Stats()[c.reason] != before+1 {
			t.Errorf("%s: %d %+v, want %d %s", c.name, code, ans, c.status, c.reason)
		}
	}
	if got := e.rec.take(); len(got) == 0 {
		t.Fatal("nothing published")
	}
}

// A device that resends its packet because the answer was lost gets 200
// and its readings are not stored twice; equal packets without a device
// time are separate measurements and are stored.
func TestResendIsNotStoredTwice(t *testing.T) {
	e := newEnv(t, Config{})
	e.send(`{"device":"d1","readings":[{"address":"A","t":20}]}`)
	e.assign("d1", true)
	e.assign("TA", true)
	e.rec.take()
	timed := `{"device":"d1","time":1699999990,"readings":[{"address":"A","t":21}]}`
	for k := 0; k < 2; k++ {
		if code, ans := e.send(timed); code != http.StatusOK {
			t.Fatalf("timed packet %d: %d %+v", k, code, ans)
		}
	}
	if n := len(e.rec.take()); n != 4 || e.a.Stats()[ReasonDuplicate] != 1 {
		t.Fatalf("%d publications for a packet and its resend, stats %v", n, e.a.Stats())
	}
	untimed := `{"device":"d1","readings":[{"address":"A","t":21}]}`
	for k := 0; k < 2; k++ {
		if code, _ := e.send(untimed); code != http.StatusOK {
			t.Fatalf("untimed packet %d: %d", k, code)
		}
	}
	if n := len(e.rec.take()); n != 8 || e.a.Stats()[ReasonDuplicate] != 1 {
		t.Fatalf("%d publications for two untimed packets, stats %v", n, e.a.Stats())
	}
}

func TestLastPacketsBounded(t *testing.T) {
	l := NewLastPackets(2)
	l.Stored("a", []byte("1"))
	l.Stored("b", []byte("2"))
	l.Stored("c", []byte("3"))
	kept := 0
	for _, d := range []string{"a", "b"} {
		if l.Same(d, []byte(map[string]string{"a": "1", "b": "2"}[d])) {
			kept++
		}
	}
	if !l.Same("c", []byte("3")) || kept != 1 || l.Same("c", []byte("4")) {
		t.Fatalf("kept %d of the older devices; c remembered %v", kept, l.Same("c", []byte("3")))
	}
}

// One packet, or one device, cannot use up the auto-registration budget
// (issue 11): a packet carries at most MaxReadings readings, and a device
// registers at most a quarter of MaxUnassigned unassigned sensors.
func TestRegistrationBudgetShare(t *testing.T) {
	e := newEnv(t, Config{MaxUnassigned: 100})
	packet := func(dev string, n, from int) string {
		var rs []string
		for i := range n {
			rs = append(rs, fmt.Sprintf(`{"a":"A%d","t":%d}`, from+i, i%10))
		}
		return fmt.Sprintf(`{"device":%q,"readings":[%s]}`, dev, strings.Join(rs, ","))
	}
	before := e.c.UnassignedThings()
	if code, ans := e.send(packet("FLOOD", 3000, 0)); code != http.StatusBadRequest || !strings.Contains(ans.Error, "at most 32 readings") {
		t.Fatalf("3000 readings: %d %+v", code, ans)
	}
	if n := e.c.UnassignedThings(); n != before {
		t.Fatalf("a refused packet registered %d things", n-before)
	}
	if code, _ := e.send(packet("CHIP9", 20, 0)); code != http.StatusAccepted {
		t.Fatalf("20 new sensors: %d", code)
	}
	// 20 + 10 > 25: refused whole, nothing registered.
	if code, ans := e.send(packet("CHIP9", 10, 20)); code != http.StatusForbidden || !strings.Contains(ans.Error, "at most 25 unassigned sensors") {
		t.Fatalf("over the device's share: %d %+v", code, ans)
	}
	if n := e.c.UnassignedThings() - before; n != 21 {
		t.Fatalf("%d things registered, want the device and its 20 sensors", n)
	}
	// Known sensors keep reporting; another device has its own share.
	if code, _ := e.send(packet("CHIP9", 20, 0)); code != http.StatusAccepted {
		t.Fatalf("known sensors: %d", code)
	}
	if code, _ := e.send(packet("CHIP10", 25, 100)); code != http.StatusAccepted {
		t.Fatalf("another device: %d", code)
	}
}
