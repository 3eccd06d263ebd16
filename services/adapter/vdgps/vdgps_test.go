package vdgps

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

	"github.com/piot-appliance/piot/services/adapter"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/core/coretest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type pub struct{ topic, payload string }

type recorder struct {
	mu   sync.Mutex
	msgs []pub
	fail func(n int) error
}

func (r *recorder) publish(ctx context.Context, msgs []adapter.Message) error {
	for _, m := range msgs {
		if err := r.one(ctx, m.Topic, m.Payload, m.At); err != nil {
			return err
		}
	}
	return nil
}

func (r *recorder) one(_ context.Context, topic string, payload []byte, _ time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(len(r.msgs)); err != nil {
			return err
		}
	}
	r.msgs = append(r.msgs, pub{topic, string(payload)})
	return nil
}

func (r *recorder) take() []pub {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.msgs
	r.msgs = nil
	return out
}

type env struct {
	t     *testing.T
	c     *core.Core
	admin core.Actor
	org   core.Org
	rec   *recorder
	h     *Handler
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	ce := coretest.New(t)
	c, admin, org := ce.Core, ce.Admin, ce.Org
	e := &env{t: t, c: c, admin: admin, org: org, rec: &recorder{}}
	cfg.Logger = quiet
	var err error
	if e.h, err = New(cfg, Deps{Core: c, Publish: adapter.PublisherFunc(e.rec.publish)}); err != nil {
		t.Fatal(err)
	}
	return e
}

// answer is the protocol's JSON envelope as a client reads it.
type answer struct {
	Error  string `json:"error"`
	Result string `json:"result"`
}

func (e *env) do(method string, body []byte) (int, answer) {
	e.t.Helper()
	req := httptest.NewRequest(method, "/adapter/vdgps", bytes.NewReader(body))
	rr := httptest.NewRecorder()
	e.h.ServeHTTP(rr, req)
	var a answer
	if err := json.Unmarshal(rr.Body.Bytes(), &a); err != nil {
		e.t.Fatalf("answer %d is not JSON: %q", rr.Code, rr.Body.String())
	}
	return rr.Code, a
}

func (e *env) enable(name string, assign bool) core.Thing {
	e.t.Helper()
	th, ok := e.c.ThingByName(name)
	if !ok {
		e.t.Fatalf("thing %s not registered", name)
	}
	on := true
	u := core.ThingUpdate{ID: th.ID, Enabled: &on}
	if assign {
		u.SetOrg, u.OrgID = true, e.org.ID
	}
	th, err := e.c.UpdateThing(context.Background(), e.admin, u)
	if err != nil {
		e.t.Fatal(err)
	}
	return th
}

func TestRegisterNewDevice(t *testing.T) {
	e := newEnv(t, Config{})
	code, a := e.do(http.MethodPost, readFixture(t))
	if code != http.StatusAccepted || a.Result != ResultNotAssigned {
		t.Fatalf("got %d %+v", code, a)
	}
	if msgs := e.rec.take(); len(msgs) != 0 {
		t.Fatalf("published %d messages for an unassigned device", len(msgs))
	}
	th, ok := e.c.ThingByPiotID("VDBCKPX")
	if !ok {
		t.Fatal("not registered by piot id")
	}
	if th.Name != "VDBCKPX" || th.Type != core.ThingDevice || !th.OrgID.IsZero() || th.Enabled {
		t.Fatalf("thing: %+v", th)
	}
	if th.LocMQTTTopic != "location" || th.LocMQTTLatValue != "lat" || th.LocMQTTLngValue != "lng" ||
		th.LocMQTTSatValue != "sat" || th.LocMQTTTsValue != "ts" {
		t.Fatalf("location settings: %+v", th)
	}
	if th.Voltage != 3928 {
		t.Fatalf("voltage %v, want 3928", th.Voltage)
	}
	// Again: found, not registered twice.
	if code, _ := e.do(http.MethodPost, readFixture(t)); code != http.StatusAccepted {
		t.Fatalf("second packet: %d", code)
	}
	if e.h.Stats()[ReasonNotAssigned] != 2 {
		t.Fatalf("stats %v", e.h.Stats())
	}
}

func TestDisabledDevice(t *testing.T) {
	e := newEnv(t, Config{})
	e.do(http.MethodPost, readFixture(t))
	th, _ := e.c.ThingByName("VDBCKPX")
	if _, err := e.c.UpdateThing(context.Background(), e.admin, core.ThingUpdate{ID: th.ID, SetOrg: true, OrgID: e.org.ID}); err != nil {
		t.Fatal(err)
	}
	code, a := e.do(http.MethodPost, readFixture(t))
	if code != http.StatusAccepted || a.Result != ResultDisabled {
		t.Fatalf("got %d %+v", code, a)
	}
	if msgs := e.rec.take(); len(msgs) != 0 {
		t.Fatalf("published %d messages for a disabled device", len(msgs))
	}
}

func TestPublishFixesInOrder(t *testing.T) {
	e := newEnv(t, Config{})
	e.do(http.MethodPost, readFixture(t))
	e.enable("VDBCKPX", true)

	body := bytes.Replace(readFixture(t), []byte("|3928|"), []byte("|3711|"), 1)
	code, a := e.do(http.MethodPost, body)
	if code != http.StatusOK || a.Error != "" {
		t.Fatalf("got %d %+v", code, a)
	}
	p, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	msgs := e.rec.take()
	if len(msgs) != 69 {
		t.Fatalf("published %d, want 69", len(msgs))
	}
	if msgs[0].payload != `{"ts":1582982736,"lat":49.3065602,"lng":17.4043881,"sat":9}` {
		t.Fatalf("first payload %s", msgs[0].payload)
	}
	for i, m := range msgs {
		if m.topic != "org/acme/VDBCKPX/location" {
			t.Fatalf("topic %d: %s", i, m.topic)
		}
		var got location
		if err := json.Unmarshal([]byte(m.payload), &got); err != nil {
			t.Fatal(err)
		}
		if got != location(p.Fixes[i]) {
			t.Fatalf("message %d: %+v, want %+v", i, got, p.Fixes[i])
		}
	}
	th, _ := e.c.ThingByName("VDBCKPX")
	if th.Voltage != 3711 {
		t.Fatalf("voltage %v, want 3711", th.Voltage)
	}
}

func TestPublishFailure(t *testing.T) {
	e := newEnv(t, Config{})
	e.do(http.MethodPost, readFixture(t))
	e.enable("VDBCKPX", true)
	e.rec.fail = func(n int) error {
		if n == 10 {
			return errors.New("broker down")
		}
		return nil
	}
	code, a := e.do(http.MethodPost, readFixture(t))
	if code != http.StatusServiceUnavailable || a.Error == "" {
		t.Fatalf("got %d %+v", code, a)
	}
	if n := len(e.rec.take()); n != 10 {
		t.Fatalf("published %d before failure, want 10", n)
	}
	if e.h.Stats()[ReasonPublishFailed] != 1 {
		t.Fatalf("stats %v", e.h.Stats())
	}
}

func TestRejections(t *testing.T) {
	e := newEnv(t, Config{MaxBody: 1024})
	if code, _ := e.do(http.MethodGet, nil); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", code)
	}
	for _, body := range []string{"", "K|ID|3928|00", "K|ID|3928||", "K||3928|00|", "K|ID|x|00|", "garbage"} {
		code, a := e.do(http.MethodPost, []byte(body))
		if code != http.StatusBadRequest || a.Error == "" {
			t.Fatalf("%q: %d %+v", body, code, a)
		}
	}
	if code, _ := e.do(http.MethodPost, []byte("K|a/b|1|0|")); code != http.StatusBadRequest {
		t.Fatalf("invalid name: %d", code)
	}
	if code, _ := e.do(http.MethodPost, append([]byte("K|BIG|1|0|"), make([]byte, 2048)...)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversize: %d", code)
	}
	// Truncations of the real capture never panic: 400 (header cut) or
	// 202 (new unassigned device, partial record ignored).
	b := readFixture(t)
	for n := 0; n <= 200 && n <= len(b); n++ {
		code, _ := e.do(http.MethodPost, b[:n])
		if code != http.StatusBadRequest && code != http.StatusAccepted {
			t.Fatalf("truncated at %d: %d", n, code)
		}
	}
	st := e.h.Stats()
	if st[ReasonMethod] != 1 || st[ReasonTooLarge] != 1 || st[ReasonBadPacket] == 0 || st[ReasonInvalidName] != 1 {
		t.Fatalf("stats %v", st)
	}
}

func TestNameConflict(t *testing.T) {
	e := newEnv(t, Config{})
	if _, err := e.c.CreateThing(context.Background(), e.admin, "VDBCKPX", core.ThingDevice); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.do(http.MethodPost, readFixture(t)); code != http.StatusConflict {
		t.Fatalf("got %d", code)
	}
}

func TestUnassignedCap(t *testing.T) {
	e := newEnv(t, Config{MaxUnassigned: 3})
	for i := 0; i < 3; i++ {
		if code, _ := e.do(http.MethodPost, fmt.Appendf(nil, "K|D%d|1|0|", i)); code != http.StatusAccepted {
			t.Fatalf("device %d: %d", i, code)
		}
	}
	code, a := e.do(http.MethodPost, []byte("K|D9|1|0|"))
	if code != http.StatusForbidden || !strings.Contains(a.Error, "unassigned") {
		t.Fatalf("over cap: %d %+v", code, a)
	}
	if _, ok := e.c.ThingByName("VDD9"); ok {
		t.Fatal("registered beyond the cap")
	}
	// Known devices still get through.
	if code, _ := e.do(http.MethodPost, []byte("K|D0|1|0|")); code != http.StatusAccepted {
		t.Fatalf("known device: %d", code)
	}
}

func TestConcurrentPackets(t *testing.T) {
	e := newEnv(t, Config{})
	e.do(http.MethodPost, readFixture(t))
	e.enable("VDBCKPX", true)
	b := readFixture(t)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest(http.MethodPost, "/adapter/vdgps", bytes.NewReader(b))
			rr := httptest.NewRecorder()
			e.h.ServeHTTP(rr, req)
			if rr.Code != http.StatusOK {
				t.Errorf("got %d", rr.Code)
			}
		}()
	}
	wg.Wait()
	// Equal uploads: each is stored, or acknowledged as a resend of one
	// that was.
	n, dup := len(e.rec.take()), e.h.Stats()[adapter.ReasonDuplicate]
	if n == 0 || n%69 != 0 || uint64(n/69)+dup != 8 {
		t.Fatalf("published %d fixes, %d duplicates", n, dup)
	}
}

// A tracker that resends its upload because the answer was lost gets 200
// and its fixes are not stored twice; another upload is stored.
func TestResendIsNotStoredTwice(t *testing.T) {
	e := newEnv(t, Config{})
	b := readFixture(t)
	e.do(http.MethodPost, b)
	e.enable("VDBCKPX", true)
	for k := 0; k < 2; k++ {
		if code, a := e.do(http.MethodPost, b); code != http.StatusOK {
			t.Fatalf("upload %d: %d %+v", k, code, a)
		}
	}
	if n := len(e.rec.take()); n != 69 || e.h.Stats()[adapter.ReasonDuplicate] != 1 {
		t.Fatalf("published %d fixes, stats %v", n, e.h.Stats())
	}
	other := bytes.Replace(b, []byte("|3928|"), []byte("|3927|"), 1)
	if bytes.Equal(other, b) {
		t.Fatal("fixture has no voltage 3928")
	}
	if code, _ := e.do(http.MethodPost, other); code != http.StatusOK || len(e.rec.take()) != 69 {
		t.Fatalf("a different upload: %d", code)
	}
}

// Uploads received directly are held to the per-device minimum interval;
// relayed ones were limited at the edge and are not.
func TestMinimumInterval(t *testing.T) {
	ce := coretest.New(t)
	rec := &recorder{}
	checker, err := adapter.NewChecker(adapter.Config{MinInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Logger: quiet}, Deps{Core: ce.Core, Publish: adapter.PublisherFunc(rec.publish), Limit: checker.Limit})
	if err != nil {
		t.Fatal(err)
	}
	body := readFixture(t)
	if out := h.Handle(context.Background(), body, adapter.Source{}); out.Status != http.StatusAccepted {
		t.Fatalf("first upload: %+v", out)
	}
	out := h.Handle(context.Background(), body, adapter.Source{})
	if out.Status != http.StatusTooManyRequests || out.RetryAfter <= 0 || h.Stats()[adapter.ReasonRateLimited] != 1 {
		t.Fatalf("second upload within the interval: %+v, stats %v", out, h.Stats())
	}
	if out := h.Handle(context.Background(), body, adapter.Source{OrgID: ce.Org.ID}); out.Status == http.StatusTooManyRequests {
		t.Fatalf("relayed upload was rate limited: %+v", out)
	}
}
