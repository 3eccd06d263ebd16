package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
)

// wtSignIn signs any user in and returns the cookie and form token.
func wtSignIn(t *testing.T, tw *testWeb, email, password string) (*http.Cookie, string) {
	t.Helper()
	w := tw.do(http.MethodPost, "/signin", url.Values{"email": {email}, "password": {password}, "next": {"/things"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("sign in %s: %d %s", email, w.Code, w.Body.String())
	}
	var c *http.Cookie
	for _, k := range w.Result().Cookies() {
		if k.Name == cookieName {
			c = k
		}
	}
	page := tw.do(http.MethodGet, "/", nil, withCookie(c))
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.Body.String())
	if m == nil {
		t.Fatalf("no form token: %s", page.Body.String())
	}
	return c, m[1]
}

// wtFixture: org farm with a thing whose name is markup, org barn with
// bob, who is not an admin.
type wtFixture struct {
	tw         *testWeb
	farm, barn core.Org
	thing      core.Thing
	bob        core.Actor
}

const wtBob, wtBobPW = "bob@barn.test", "bob-password-1"

func wtSetup(t *testing.T) *wtFixture {
	t.Helper()
	tw := newTestWeb(t)
	c, admin, ctx := tw.env.Core, tw.env.Admin, context.Background()
	f := &wtFixture{tw: tw}
	var err error
	if f.farm, err = c.CreateOrg(ctx, admin, "farm", ""); err != nil {
		t.Fatal(err)
	}
	if f.barn, err = c.CreateOrg(ctx, admin, "barn", ""); err != nil {
		t.Fatal(err)
	}
	if f.thing, err = c.CreateThing(ctx, admin, `<img src=x onerror=alert(1)>`, core.ThingSensor); err != nil {
		t.Fatal(err)
	}
	if f.thing, err = c.UpdateThing(ctx, admin, core.ThingUpdate{ID: f.thing.ID, SetOrg: true, OrgID: f.farm.ID}); err != nil {
		t.Fatal(err)
	}
	u, err := c.CreateUser(ctx, admin, wtBob, wtBobPW, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddOrgUser(ctx, admin, f.barn.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	if f.bob, err = c.Login(ctx, wtBob, wtBobPW); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestThingPagesEscapeNames(t *testing.T) {
	f := wtSetup(t)
	c, _ := f.tw.signIn()
	if w := f.tw.do(http.MethodGet, "/things/all?q=nothing-like-it", nil, withCookie(c)); !strings.Contains(w.Body.String(), "No things match.") {
		t.Fatalf("filter: %s", w.Body.String())
	}
	id := f.thing.ID.Hex()
	for _, p := range []string{"/things/all", "/things/all?unassigned=0", "/things/all?q=IMG", "/things/" + id, "/things/" + id + "/history"} {
		w := f.tw.do(http.MethodGet, p, nil, withCookie(c))
		body := w.Body.String()
		if w.Code != http.StatusOK || strings.Contains(body, "<img") || !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
			t.Fatalf("%s: %d, the name is not escaped:\n%s", p, w.Code, body)
		}
	}
}

func TestThingPagesRefuseOtherOrgs(t *testing.T) {
	f := wtSetup(t)
	c, tok := wtSignIn(t, f.tw, wtBob, wtBobPW)
	id := f.thing.ID.Hex()
	for _, p := range []string{"/things/" + id, "/things/" + id + "/history", "/things/all"} {
		if w := f.tw.do(http.MethodGet, p, nil, withCookie(c)); w.Code != http.StatusForbidden || strings.Contains(w.Body.String(), "img src") {
			t.Errorf("bob GET %s: %d", p, w.Code)
		}
	}
	for _, p := range []string{"/things/" + id + "/assign", "/things/" + id + "/general", "/things/" + id + "/sensor", "/things/" + id + "/delete"} {
		w := f.tw.do(http.MethodPost, p, url.Values{"csrf": {tok}, "org": {f.barn.ID.Hex()}, "name": {"mine"}}, withCookie(c))
		if w.Code != http.StatusForbidden {
			t.Errorf("bob POST %s: %d", p, w.Code)
		}
	}
	if got, _ := f.tw.env.Core.Thing(f.tw.env.Admin, f.thing.ID); got.OrgID != f.farm.ID || got.Name != f.thing.Name {
		t.Fatalf("bob changed the thing: %+v", got)
	}
	// A name filter is no way around it.
	if w := f.tw.do(http.MethodGet, "/things?q=img", nil, withCookie(c)); w.Code != http.StatusOK || strings.Contains(w.Body.String(), "img src") {
		t.Fatalf("bob's filtered list: %d", w.Code)
	}
	// His own list is barn's: empty.
	if w := f.tw.do(http.MethodGet, "/things", nil, withCookie(c)); w.Code != http.StatusOK || strings.Contains(w.Body.String(), "img src") {
		t.Fatalf("bob's list: %d", w.Code)
	}
}

func TestThingFormsChangeThroughCore(t *testing.T) {
	f := wtSetup(t)
	c, tok := f.tw.signIn()
	id := f.thing.ID.Hex()
	post := func(path string, form url.Values) {
		t.Helper()
		form.Set("csrf", tok)
		if w := f.tw.do(http.MethodPost, path, form, withCookie(c)); w.Code != http.StatusSeeOther {
			t.Fatalf("POST %s: %d %s", path, w.Code, w.Body.String())
		}
	}
	// Without the form token nothing changes.
	if w := f.tw.do(http.MethodPost, "/things/"+id+"/assign", url.Values{"org": {""}}, withCookie(c)); w.Code != http.StatusForbidden {
		t.Fatalf("assign without a token: %d", w.Code)
	}
	post("/things/"+id+"/general", url.Values{"name": {"T1"}, "enabled": {"off", "on"}, "last_seen_interval": {"30"}, "parent": {""}})
	post("/things/"+id+"/sensor", url.Values{"unit": {"C"}, "class": {"temperature"}, "measurement_topic": {"T1/value"}})
	post("/things/"+id+"/assign", url.Values{"org": {f.barn.ID.Hex()}})
	got, _ := f.tw.env.Core.Thing(f.tw.env.Admin, f.thing.ID)
	if got.Name != "T1" || !got.Enabled || got.LastSeenInterval != 30 || got.Sensor.Unit != "C" || got.Sensor.MeasurementTopic != "T1/value" || got.OrgID != f.barn.ID {
		t.Fatalf("after the forms: %+v", got)
	}
	post("/things/"+id+"/general", url.Values{"enabled": {"off"}})
	post("/things/"+id+"/assign", url.Values{"org": {""}})
	if got, _ := f.tw.env.Core.Thing(f.tw.env.Admin, f.thing.ID); got.Enabled || !got.OrgID.IsZero() {
		t.Fatalf("disable and unassign: %+v", got)
	}
	// A bad number is the user's mistake, not a crash.
	w := f.tw.do(http.MethodPost, "/things/"+id+"/location", url.Values{"csrf": {tok}, "loc_lat": {"north"}}, withCookie(c))
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "Latitude must be a number") {
		t.Fatalf("bad latitude: %d", w.Code)
	}
	// A switch toggles through core's switch operation.
	sw, err := f.tw.env.Core.CreateThing(context.Background(), f.tw.env.Admin, "S1", core.ThingSwitch)
	if err != nil {
		t.Fatal(err)
	}
	post("/things/"+sw.ID.Hex()+"/switch/set", url.Values{"state": {"on"}})
	if got, _ := f.tw.env.Core.Thing(f.tw.env.Admin, sw.ID); !got.Switch.State {
		t.Fatal("switch not on")
	}
	post("/things/"+sw.ID.Hex()+"/delete", url.Values{})
	if _, err := f.tw.env.Core.Thing(f.tw.env.Admin, sw.ID); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("deleted switch: %v", err)
	}
}

// The live feed names only things the user may read.
func TestThingEventsFollowCore(t *testing.T) {
	f := wtSetup(t)
	s := f.tw.srv
	watch := s.watchThings()
	defer watch.stop()
	f.tw.env.Core.UpdateThingState(f.thing.ID, func(t *core.Thing) bool {
		t.Sensor.Value, t.LastSeen = "21.285714285714285", time.Now().Unix()
		return true
	})
	select {
	case <-watch.ready:
	case <-time.After(time.Second):
		t.Fatal("no state change noticed")
	}
	ids, _ := watch.take()
	watch.ids = ids // as if not taken yet, for the second reader
	if ev := s.thingEvents(f.bob, watch); ev != "" {
		t.Fatalf("bob was told: %q", ev)
	}
	watch.ids = ids
	ev := s.thingEvents(f.tw.env.Admin, watch)
	if !strings.Contains(ev, "event: thing\n") || !strings.Contains(ev, f.thing.ID.Hex()) || !strings.Contains(ev, `"value":"21.285714"`) {
		t.Fatalf("admin's event: %q", ev)
	}
	// An alarm set as a setting (Grafana's webhook) is state to show too.
	if _, err := f.tw.env.Core.SetThingAlarm(context.Background(), core.System(), f.thing.ID, true); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); ; {
		select {
		case <-watch.ready:
		case <-time.After(100 * time.Millisecond):
		}
		watch.mu.Lock()
		n := len(watch.ids)
		watch.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the alarm setting was not noticed")
		}
	}
	if ev := s.thingEvents(f.tw.env.Admin, watch); !strings.Contains(ev, `"alarm":true`) {
		t.Fatalf("alarm event: %q", ev)
	}
}

func TestNumbersAndTimes(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		dec  int
		want string
	}{{21.285714285714285, 2, "21.29"}, {20.5, 2, "20.5"}, {20, 2, "20"}, {-0.0001, 2, "0"}, {1234.6, 0, "1235"}} {
		if got := trimNum(tc.v, tc.dec); got != tc.want {
			t.Errorf("trimNum(%v, %d) = %q, want %q", tc.v, tc.dec, got, tc.want)
		}
	}
	lo, hi, ticks, dec := niceRange(21.2, 24.8, 5)
	if lo != 21 || hi != 25 || len(ticks) != 5 || dec != 0 {
		t.Errorf("niceRange = %v %v %v %d", lo, hi, ticks, dec)
	}
	if _, _, ticks, dec := niceRange(0.012, 0.019, 5); dec != 3 || len(ticks) < 3 {
		t.Errorf("small range: %v %d", ticks, dec)
	}
	now := time.Unix(1_800_000_000, 0)
	for unix, want := range map[int64]string{0: "never", now.Unix(): "just now", now.Unix() - 42: "42 s ago", now.Unix() - 3*60: "3 min ago", now.Unix() - 5*3600: "5 h ago", now.Unix() - 3*86400: "3 d ago"} {
		if got := ago(unix, now); got != want {
			t.Errorf("ago(%d) = %q, want %q", unix, got, want)
		}
	}
	for span, want := range map[int64]int64{3600: 60, 86400: 900, 7 * 86400: 7200, 30 * 86400: 6 * 3600, 366 * 86400: 4 * 86400} {
		if got := history.StepFor(span, chartBuckets); got != want {
			t.Errorf("StepFor(%d) = %d, want %d", span, got, want)
		}
	}
}

func TestTimeChartBreaksLongGaps(t *testing.T) {
	from := int64(1_800_000_000)
	to := from + 86400
	bs := []bucket{
		{TS: from, Avg: 1, Min: 0, Max: 2}, {TS: from + 900, Avg: 2, Min: 1, Max: 3},
		{TS: from + 40000, Avg: 3, Min: 3, Max: 3}, // alone after a long silence
		{TS: from + 80000, Avg: 4, Min: 3, Max: 5}, {TS: from + 80900, Avg: 5, Min: 4, Max: 6},
	}
	c := timeChart(bs, from, to, 900, "C", false)
	if strings.Count(c.Line, "M") != 2 || strings.Count(c.Band, "Z") != 2 || len(c.Dots) != 1 {
		t.Fatalf("line %q band %q dots %v", c.Line, c.Band, c.Dots)
	}
	if len(c.XTicks) < 3 || len(c.YTicks) < 3 || c.YTicks[0].Label != "0" {
		t.Fatalf("ticks: %v %v", c.XTicks, c.YTicks)
	}
	sw := timeChart([]bucket{{TS: from, Avg: 0.5, Min: 0, Max: 1}}, from, to, 900, "", true)
	if len(sw.YTicks) != 2 || sw.YTicks[0].Label != "off" || sw.YTicks[1].Label != "on" {
		t.Fatalf("switch ticks: %v", sw.YTicks)
	}
	if e := timeChart(nil, from, to, 900, "", false); !e.Empty {
		t.Fatal("an empty chart is not marked empty")
	}
}

func TestGeoPlotKeepsPointsInside(t *testing.T) {
	g := geoPlot([]geoPoint{{Lat: 49.19, Lng: 16.60, Label: "a"}, {Lat: 49.21, Lng: 16.58, Label: "b"}, {Lat: -33.9, Lng: 151.2, Label: "c"}}, false)
	for _, p := range g.Points {
		if p.X < g.X0 || p.X > g.X1 || p.Y < g.Y0 || p.Y > g.Y1 {
			t.Fatalf("%s outside the plot: %v,%v", p.Label, p.X, p.Y)
		}
	}
	if len(g.XTicks) < 2 || len(g.YTicks) < 2 || !strings.HasSuffix(g.YTicks[len(g.YTicks)-1].Label, "N") {
		t.Fatalf("ticks: %v %v", g.XTicks, g.YTicks)
	}
	one := geoPlot([]geoPoint{{Lat: 10, Lng: 10}}, true)
	if one.Empty || len(one.Points) != 1 || one.Track == "" {
		t.Fatalf("one point: %+v", one)
	}
}

// The history page over a real history store: the range picker changes
// the chart and the table, numbers are rounded, a location is a track.
func TestHistoryPage(t *testing.T) {
	f := wtSetup(t)
	hist, err := history.New(f.tw.env.Store, history.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f.tw.srv.deps.History = hist
	now := time.Now().Unix()
	id := f.thing.ID
	var pts []history.Point
	for i, v := range []string{"21.1", "21.285714285714285", "22.4"} {
		pts = append(pts, history.Point{Thing: id, Kind: history.KindSensor, TS: now - 600 + int64(i)*60, Value: v, Seq: uint64(i + 1)})
	}
	pts = append(pts,
		history.Point{Thing: id, Kind: history.KindSensor, TS: now - 5*86400, Value: "9", Seq: 10},
		history.Point{Thing: id, Kind: history.KindLocation, TS: now - 300, Value: `{"lat":49.19,"lng":16.6,"sat":7}`, Seq: 11},
		history.Point{Thing: id, Kind: history.KindLocation, TS: now - 200, Value: `{"lat":49.2,"lng":16.61,"sat":7}`, Seq: 12})
	if err := hist.Append(context.Background(), pts); err != nil {
		t.Fatal(err)
	}
	c, _ := f.tw.signIn()
	get := func(q string) string {
		t.Helper()
		w := f.tw.do(http.MethodGet, "/things/"+id.Hex()+"/history?"+q, nil, withCookie(c))
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", q, w.Code, w.Body.String())
		}
		return w.Body.String()
	}
	hour := get("range=1h")
	if !strings.Contains(hour, "3 readings") || strings.Contains(hour, "21.285714285714285") || !strings.Contains(hour, "21.285714") || strings.Contains(hour, ">9<") {
		t.Fatalf("1 hour:\n%s", hour)
	}
	if !strings.Contains(hour, `min <strong>21.1</strong>`) || !strings.Contains(hour, `max <strong>22.4</strong>`) || !strings.Contains(hour, `avg <strong>21.6</strong>`) {
		t.Fatalf("1 hour summary:\n%s", hour)
	}
	week := get("range=7d")
	if !strings.Contains(week, "4 readings") || week == hour {
		t.Fatalf("7 days:\n%s", week)
	}
	from := time.Unix(now-7*86400, 0).UTC().Format(inputTime)
	to := time.Unix(now-4*86400, 0).UTC().Format(inputTime)
	custom := get(url.Values{"range": {"custom"}, "from": {from}, "to": {to}}.Encode())
	if !strings.Contains(custom, "1 reading in") || strings.Contains(custom, "22.4") {
		t.Fatalf("custom range:\n%s", custom)
	}
	track := get("range=1h&kind=location")
	if !strings.Contains(track, `data-chart="track"`) || !strings.Contains(track, "2 positions") || !strings.Contains(track, "49.2, 16.61") {
		t.Fatalf("track:\n%s", track)
	}
	w := f.tw.do(http.MethodGet, "/things/"+id.Hex()+"/history?kind=weather", nil, withCookie(c))
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "kind must be sensor, switch, location or battery") {
		t.Fatalf("unknown kind: %d", w.Code)
	}
	w = f.tw.do(http.MethodGet, "/things/"+id.Hex()+"/history?range=custom&from=x", nil, withCookie(c))
	if w.Code != http.StatusBadRequest {
		t.Fatalf("bad custom range: %d", w.Code)
	}
}

// A busy thing's table shows its newest readings, not the range's first.
func TestHistoryTableShowsTheNewest(t *testing.T) {
	f := wtSetup(t)
	hist, err := history.New(f.tw.env.Store, history.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f.tw.srv.deps.History = hist
	now := time.Now().Unix()
	var pts []history.Point
	for i := range 300 { // one every 10 s, the newest 150 s ago
		pts = append(pts, history.Point{Thing: f.thing.ID, Kind: history.KindSensor, TS: now - 3150 + int64(i)*10, Value: strconv.Itoa(i), Seq: uint64(i + 1)})
	}
	if err := hist.Append(context.Background(), pts); err != nil {
		t.Fatal(err)
	}
	c, _ := f.tw.signIn()
	w := f.tw.do(http.MethodGet, "/things/"+f.thing.ID.Hex()+"/history?range=7d", nil, withCookie(c))
	body := w.Body.String()
	first := regexp.MustCompile(`<td data-label="Value">(\d+)`).FindStringSubmatch(body)
	if w.Code != http.StatusOK || !strings.Contains(body, "The newest 100 readings") || first == nil || first[1] != "299" {
		t.Fatalf("%d, first row %v:\n%s", w.Code, first, body)
	}
	if !strings.Contains(body, "min <strong>0</strong>") || !strings.Contains(body, "max <strong>299</strong>") {
		t.Fatalf("summary of the buckets:\n%s", body)
	}
}
