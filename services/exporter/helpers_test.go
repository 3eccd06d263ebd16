package exporter

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/piot-appliance/piot/services/broker"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/core/coretest"
	"github.com/piot-appliance/piot/services/history"
	"github.com/piot-appliance/piot/services/ingest"
)

const (
	globalToken = "global-token-0123456789"
	farmToken   = "piot_org_farm-token"
	cityToken   = "piot_org_city-token"
)

// fixture is a real core on a real embedded store with two orgs and
// things in every state the exporter distinguishes.
type fixture struct {
	core   *core.Core
	admin  core.Actor
	farm   core.ID
	city   core.ID
	things map[string]core.ID
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	fx := coretest.Open(t, coretest.Options{AdminEmail: "admin@piot.local", AdminPassword: "admin-password"})
	c, admin := fx.Core, fx.Admin
	f := &fixture{core: c, admin: admin, things: map[string]core.ID{}}
	f.farm = f.org(t, "farm")
	f.city = f.org(t, "city")
	f.org(t, "empty")

	// Greenhouse: a sensor with an alias, every state field set.
	gh := f.thing(t, "t-sensor", core.ThingSensor, f.farm, true, "Greenhouse")
	f.sensor(t, gh, "temperature", "°C")
	f.state(t, gh, func(th *core.Thing) {
		th.Sensor.Value = "21.5"
		th.Available, th.LastSeen, th.AlarmActive = true, 1_700_000_000, true
		th.BatteryLevel = 80
		th.LocLat, th.LocLng, th.LocTs = 48.1486, 17.1077, 1_700_000_050
	})
	// A sensor whose value is text, never seen: no value, no last seen.
	tx := f.thing(t, "t-text", core.ThingSensor, f.farm, true, "")
	f.state(t, tx, func(th *core.Thing) { th.Sensor.Value = "open" })
	// A switch; its location has coordinates but no fix time: no location.
	sw := f.thing(t, "t-switch", core.ThingSwitch, f.farm, true, "")
	f.state(t, sw, func(th *core.Thing) {
		th.Switch.State, th.Available, th.LastSeen = true, true, 1_700_000_100
		th.LocLat, th.LocLng = 1, 2
	})
	// Things without metrics.
	dis := f.thing(t, "t-disabled", core.ThingSensor, f.farm, false, "Disabled")
	f.state(t, dis, func(th *core.Thing) { th.Sensor.Value, th.Available, th.LastSeen = "1", true, 1_700_000_000 })
	un := f.thing(t, "t-unassigned", core.ThingSensor, core.ID{}, true, "")
	f.state(t, un, func(th *core.Thing) { th.Sensor.Value, th.Available, th.LastSeen = "2", true, 1_700_000_000 })
	del := f.thing(t, "t-deleted", core.ThingSensor, f.farm, true, "")
	f.state(t, del, func(th *core.Thing) { th.Sensor.Value = "3" })
	if err := c.DeleteThing(ctx, admin, del); err != nil {
		t.Fatal(err)
	}
	delete(f.things, "t-deleted")
	// The other org.
	ct := f.thing(t, "t-city", core.ThingSensor, f.city, true, "")
	f.sensor(t, ct, "humidity", "%")
	f.state(t, ct, func(th *core.Thing) { th.Sensor.Value, th.Available, th.LastSeen = " 7 ", true, 1_700_000_200 })
	return f
}

func (f *fixture) org(t *testing.T, name string) core.ID {
	t.Helper()
	o, err := f.core.CreateOrg(context.Background(), f.admin, name, "")
	if err != nil {
		t.Fatal(err)
	}
	return o.ID
}

func (f *fixture) thing(t *testing.T, name, typ string, org core.ID, enabled bool, alias string) core.ID {
	t.Helper()
	ctx := context.Background()
	th, err := f.core.CreateThing(ctx, f.admin, name, typ)
	if err != nil {
		t.Fatal(err)
	}
	u := core.ThingUpdate{ID: th.ID, Enabled: &enabled, Alias: &alias}
	if !org.IsZero() {
		u.SetOrg, u.OrgID = true, org
	}
	if _, err := f.core.UpdateThing(ctx, f.admin, u); err != nil {
		t.Fatal(err)
	}
	f.things[name] = th.ID
	return th.ID
}

func (f *fixture) sensor(t *testing.T, id core.ID, class, unit string) {
	t.Helper()
	if _, err := f.core.UpdateThingSensor(context.Background(), f.admin, core.SensorUpdate{ID: id, Class: &class, Unit: &unit}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) state(t *testing.T, id core.ID, fn func(*core.Thing)) {
	t.Helper()
	if !f.core.UpdateThingState(id, func(th *core.Thing) bool { fn(th); return true }) {
		t.Fatalf("thing %s not found", id.Hex())
	}
}

// orgToken resolves the test org tokens as core would.
func (f *fixture) orgToken(tok string) (core.ID, bool) {
	switch tok {
	case farmToken:
		return f.farm, true
	case cityToken:
		return f.city, true
	}
	return core.ID{}, false
}

// sources are fakes of the other services with known counters.
func fakeSources(c *core.Core) Sources {
	return Sources{
		Core: c,
		Broker: func() broker.Stats {
			return broker.Stats{ClientsConnected: 3, ClientsTotal: 5, ClientsMaximum: 7, Subscriptions: 11, Retained: 2,
				Inflight: 1, InflightDropped: 4, MessagesReceived: 100, MessagesSent: 90, MessagesDropped: 6,
				PacketsReceived: 130, PacketsSent: 120, BytesReceived: 4096, BytesSent: 2048, Uptime: 60,
				AuthResults:       map[string]int64{broker.AuthOK: 9, broker.AuthBadCredentials: 2},
				ACLResults:        map[[2]string]int64{{broker.ACLRead, broker.ACLDeny}: 1, {broker.ACLWrite, broker.ACLAllow}: 50},
				PublishesReceived: [3]int64{10, 40, 0}}
		},
		JournalLatency: func() ingest.HistogramSnapshot {
			return ingest.HistogramSnapshot{Buckets: []float64{0.001, 0.01, 0.1}, Counts: []uint64{30, 40, 41}, Sum: 0.5, Count: 42}
		},
		JournalBatchSize: func() ingest.HistogramSnapshot {
			return ingest.HistogramSnapshot{Buckets: []float64{1, 2, 4}, Counts: []uint64{5, 8, 10}, Sum: 42, Count: 11}
		},
		Ingest: func() map[ingest.Key]uint64 {
			return map[ingest.Key]uint64{
				{Rule: ingest.RuleMessage, Result: ingest.Processed}:      40,
				{Rule: ingest.RuleMessage, Result: ingest.IgnoredNoMatch}: 2,
				{Rule: ingest.RuleSensor, Result: ingest.Accepted}:        30,
				{Rule: ingest.RuleSensor, Result: ingest.RejectedBadJSON}: 1,
				{Rule: ingest.RuleJournal, Result: ingest.Journaled}:      42,
				{Rule: ingest.RuleHistory, Result: ingest.PointsStored}:   30,
				{Rule: ingest.RuleHistory, Result: "something_new"}:       1,
				{Rule: ingest.RuleState, Result: ingest.Flushed}:          12,
			}
		},
		History: func() history.Stats {
			return history.Stats{PointsWritten: 30, PointsDuplicate: 1, PointsThinned: 2, PointsExpired: 3, PointsInvalid: 4,
				BulkWrites: 5, CacheMisses: 6, PartitionsDropped: 7, Partitions: 8, EstimatedBytes: 1 << 20,
				Settles: 9, Compacted: 10, HotHours: 2}
		},
		StorePing: func(ctx context.Context) error { return nil },
		StoreOps: func() []StoreOp {
			return []StoreOp{{Name: "find", Buckets: []float64{0.001, 0.01}, Counts: []uint64{5, 3, 1}, Sum: 0.125, Count: 9, Errors: 2}}
		},
		Version: "v1.2.3-test",
		Update: func() (UpdateStatus, error) {
			return UpdateStatus{Slot: "a", OtherSlotVersion: "v1.3.0", OtherSlotState: "bad", LastResult: "rolled-back",
				LastVersion: "v1.3.0", LastAt: time.Unix(1765000000, 0)}, nil
		},
	}
}

func newExporter(t *testing.T, src Sources) *Exporter {
	t.Helper()
	e, err := New(src, Config{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// scrape GETs the handler with a bearer token ("" for none).
func scrape(t *testing.T, h http.Handler, token string) (int, http.Header, string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, w.Result().Header, string(b)
}

// parse reads the text exposition format.
func parse(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	return mfs
}

// series renders a family as sorted `{k="v",...} value` lines.
func series(mf *dto.MetricFamily) []string {
	if mf == nil {
		return nil
	}
	var out []string
	for _, m := range mf.GetMetric() {
		var ls []string
		for _, l := range m.GetLabel() {
			ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		sort.Strings(ls)
		var v float64
		switch {
		case m.Gauge != nil:
			v = m.GetGauge().GetValue()
		case m.Counter != nil:
			v = m.GetCounter().GetValue()
		case m.Untyped != nil:
			v = m.GetUntyped().GetValue()
		}
		out = append(out, fmt.Sprintf("{%s} %g", strings.Join(ls, ","), v))
	}
	sort.Strings(out)
	return out
}

func names(mfs map[string]*dto.MetricFamily) []string {
	out := make([]string, 0, len(mfs))
	for n := range mfs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// tool finds a Debian tool; it fails the test when the tool is missing but
// required (PIOT_REQUIRE_MOSQUITTO, as in `make test`), else skips.
func tool(t *testing.T, path string) string {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if p, err := exec.LookPath(path[strings.LastIndex(path, "/")+1:]); err == nil {
		return p
	}
	if os.Getenv("PIOT_REQUIRE_MOSQUITTO") != "" {
		t.Fatalf("%s not installed (run tests/deps.sh)", path)
	}
	t.Skipf("%s not installed (run tests/deps.sh)", path)
	return ""
}
