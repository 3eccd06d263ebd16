package tests

import (
	"bufio"
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	paho "github.com/eclipse/paho.mqtt.golang"
)

// The things pages of the web manager (services/web: things.go,
// thinghistory.go, thingmap.go, alarms.go, thinglive.go) in headless
// Chromium against the real binary, with real MQTT clients. Every helper
// of this file starts with wt.

// wtXSS is markup a name could carry; the pages must show it as text.
const wtXSS = `<img src=x onerror=alert(1)>`

// wtBrowser is the suite's browser (web_test.go) with the steps of the
// things pages.
type wtBrowser struct{ *browser }

func wtNewBrowser(t *testing.T, base string) *wtBrowser { return &wtBrowser{newBrowser(t, base)} }

// click clicks what leads to another page (a form's button, a link) and
// returns that page's HTTP status.
func (b *wtBrowser) click(sel string) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("click %s: %v", sel, err)
	}
	return resp.Status
}

// main is the text of the page's main part.
func (b *wtBrowser) main() string { return b.eval(`document.getElementById("main").innerText`) }

// waitFor evaluates js until it is "true".
func (b *wtBrowser) waitFor(what, js string, within time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for b.eval("String("+js+")") != "true" {
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: not within %v; the page shows:\n%s", what, within, b.main())
		}
		time.Sleep(150 * time.Millisecond)
	}
}

func (b *wtBrowser) signIn(email, password string) {
	b.t.Helper()
	b.open("/signin")
	b.do(chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), password))
	if st := b.click("form[action='/signin'] button"); st != http.StatusOK {
		b.t.Fatalf("sign in as %s: status %d", email, st)
	}
}

// shots writes the viewport at desktop and phone width into
// docs/screenshots (PNG, viewport only, so the files stay small).
func (b *wtBrowser) shots(name string) {
	b.t.Helper()
	dir := filepath.Join("..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	for _, size := range []struct {
		label         string
		width, height int64
	}{{"desktop", 1280, 800}, {"phone", 390, 844}} {
		b.do(chromedp.EmulateViewport(size.width, size.height), chromedp.Sleep(150*time.Millisecond))
		png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+"-"+size.label+".png"), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	b.do(chromedp.EmulateViewport(1280, 800))
}

// darkShot writes the page in the dark scheme at desktop width.
func (b *wtBrowser) darkShot(name string) {
	b.t.Helper()
	dark := emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}
	if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, dark); err != nil {
		b.t.Fatal(err)
	}
	defer func() {
		_, _ = chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{})
	}()
	b.do(chromedp.Sleep(150 * time.Millisecond))
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", "screenshots", name+"-dark-desktop.png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *wtBrowser) noAlerts() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.alerts) > 0 {
		b.t.Fatalf("a script ran alert(): %q (markup was not escaped)", b.alerts)
	}
}

// wtGQL runs a GraphQL operation that must succeed.
func wtGQL(t *testing.T, a *appliance, tok, q string, vars map[string]any) map[string]any {
	t.Helper()
	_, data, code := a.gql(tok, q, vars)
	if code != "" {
		t.Fatalf("%s: %s", q, code)
	}
	return data
}

// wtStream is an event stream of /events read by a plain HTTP client
// signed in as a user: everything it carried, as text.
type wtStream struct {
	mu   sync.Mutex
	text strings.Builder
}

func (s *wtStream) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.text.String()
}

// wtEvents signs a user in over HTTP and follows /events until the test
// ends.
func wtEvents(t *testing.T, a *appliance, email, password string) *wtStream {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	req, _ := http.NewRequest(http.MethodPost, a.url+"/signin", strings.NewReader(url.Values{"email": {email}, "password": {password}, "next": {"/"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", a.url)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in %s over HTTP: %d", email, resp.StatusCode)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, a.url+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("/events as %s: %d %s", email, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &wtStream{}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.mu.Lock()
			s.text.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
		}
	}()
	return s
}

// An auto-registered device and sensor, assigned to an org in the
// browser; values over MQTT reach the thing page without a reload; the
// history chart and its readings follow the range picker; a last-seen
// alarm shows live and is acknowledged; the map links to things; a
// member of another org is refused the pages (also typing their URLs)
// and the event stream never names the thing; markup in a thing's name
// stays text.
func TestWebThingsInBrowser(t *testing.T) {
	const alertToken = "wt-grafana-alert-token-0123456789abcdef"
	a := startAppliance(t, startOpts{args: []string{"--adapter-min-interval", "0", "--alert-token", alertToken}})
	tok := a.login("admin@piot.local", a.adminPassword())
	farmPW := orgWithMQTT(t, a, tok, "farm", "farm-user")
	farm := orgID(t, a, tok, "farm")
	barnPW := orgWithMQTT(t, a, tok, "barn", "barn-user")
	barn := orgID(t, a, tok, "barn")

	// The admin is a member of farm, with it active; bob is a member of
	// barn only.
	var adminID string
	for _, u := range wtGQL(t, a, tok, `{ users { id email } }`, nil)["users"].([]any) {
		if u.(map[string]any)["email"] == "admin@piot.local" {
			adminID = u.(map[string]any)["id"].(string)
		}
	}
	wtGQL(t, a, tok, `mutation($o: ID!, $u: ID!) { addOrgUser(orgId: $o, userId: $u) }`, map[string]any{"o": farm, "u": adminID})
	wtGQL(t, a, tok, `mutation($o: ID) { updateUserProfile(profile: {org_id: $o}) { org_id } }`, map[string]any{"o": farm})
	const bobEmail, bobPW = "bob@barn.test", "bob-password-1"
	bob := wtGQL(t, a, tok, `mutation($e: String!, $p: String!) { createUser(email: $e, password: $p, is_admin: false) { id } }`,
		map[string]any{"e": bobEmail, "p": bobPW})["createUser"].(map[string]any)["id"].(string)
	wtGQL(t, a, tok, `mutation($o: ID!, $u: ID!) { addOrgUser(orgId: $o, userId: $u) }`, map[string]any{"o": barn, "u": bob})
	barnThing := sensorThing(t, a, tok, barn, "BARN1")

	// A PIOT packet registers the device WTDEV and its sensor TB7.
	packet := func(v float64, at int64) map[string]any {
		p := map[string]any{"device": "WTDEV", "readings": []any{map[string]any{"address": "B7", "t": v}}}
		if at != 0 {
			p["time"] = at
		}
		return p
	}
	if st, out := post(t, a.url+"/adapter", "", packet(4.5, 0)); st != http.StatusAccepted {
		t.Fatalf("first packet: %d %v", st, out)
	}
	dev, sensor := thingID(t, a, tok, "WTDEV"), thingID(t, a, tok, "TB7")

	b := wtNewBrowser(t, a.url)
	b.signIn("admin@piot.local", a.adminPassword())

	// The admin's unassigned view lists both; assign each to farm.
	if st := b.open("/things/all?unassigned=1"); st != http.StatusOK {
		t.Fatalf("unassigned things: %d", st)
	}
	if m := b.main(); !strings.Contains(m, "WTDEV") || !strings.Contains(m, "TB7") || strings.Contains(m, "BARN1") {
		t.Fatalf("unassigned things:\n%s", m)
	}
	b.shots("things-unassigned")
	for _, id := range []string{dev, sensor} {
		b.do(chromedp.SetValue(chromedp.ID("org-"+id), farm))
		if st := b.click("form:has(#org-" + id + ") button"); st != http.StatusOK {
			t.Fatalf("assign: %d", st)
		}
		if m := b.main(); !strings.Contains(m, "Thing assigned.") {
			t.Fatalf("after assigning:\n%s", m)
		}
	}
	// Enable both on their pages (General section).
	for _, id := range []string{dev, sensor} {
		b.open("/things/" + id)
		b.do(chromedp.Click(chromedp.CSS("#general input[type=checkbox][name=enabled]")))
		if st := b.click("#general form[action$='/general'] button.primary"); st != http.StatusOK {
			t.Fatalf("save general: %d", st)
		}
	}
	th := wtGQL(t, a, tok, `query($id: ID!) { thing(id: $id) { enabled org { id } parent { name } } }`, map[string]any{"id": sensor})["thing"].(map[string]any)
	if th["enabled"] != true || th["org"].(map[string]any)["id"] != farm || th["parent"].(map[string]any)["name"] != "WTDEV" {
		t.Fatalf("sensor after the browser's changes: %v", th)
	}

	// A value published over MQTT appears on the thing page without a
	// reload: the marker set on the page survives.
	mq := mqttClient(t, a.mqttAddr, "farm-user", farmPW, "wt-farm")
	defer mq.Disconnect(100)
	publish := func(topic, v string) {
		t.Helper()
		if p := mq.Publish(topic, 1, false, v); !p.WaitTimeout(5*time.Second) || p.Error() != nil {
			t.Fatalf("publish: %v", p.Error())
		}
	}
	b.open("/things/" + sensor)
	if m := b.main(); !strings.Contains(m, "Sensor") || strings.Contains(m, "Switch on") || !strings.Contains(m, "WTDEV") {
		t.Fatalf("sensor page sections:\n%s", m)
	}
	b.eval(`window.wtMarker = "kept"; "ok"`)
	time.Sleep(500 * time.Millisecond) // the page's event stream connects
	publish("org/farm/TB7/value", "23.25")
	b.waitFor("the published value on the page",
		`document.querySelector('[data-thing] [data-field=value]').textContent.includes("23.25 C")`, 10*time.Second)
	if got := b.eval(`String(window.wtMarker)`); got != "kept" {
		t.Fatalf("the page was reloaded (marker %q)", got)
	}
	if got := b.eval(`document.querySelector('[data-thing] [data-field=last-seen]').textContent`); got == "never" {
		t.Fatalf("last seen not updated: %q", got)
	}
	b.shots("things-detail")

	// History: one more value now, one measured two minutes ago and two
	// about three days ago (the device's own time).
	publish("org/farm/TB7/value", "24.75")
	for _, p := range []struct {
		v   float64
		ago time.Duration
	}{{22.5, 2 * time.Minute}, {10.5, 72 * time.Hour}, {12.5, 70 * time.Hour}} {
		if st, out := post(t, a.url+"/adapter", "", packet(p.v, time.Now().Add(-p.ago).Unix())); st != http.StatusOK {
			t.Fatalf("packet of %v ago: %d %v", p.ago, st, out)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		got := readings(t, a, tok, sensor)
		if strings.Contains(strings.Join(got, " "), "24.75") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history: %v", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // the old point's day is written too
	b.open("/things/" + sensor)
	b.click("a[href='/things/" + sensor + "/history']")
	b.click("nav[aria-label='Time range'] a[href*='range=1h']")
	hourSVG := b.eval(`document.querySelector("svg[data-chart=series]").outerHTML`)
	hourText := b.main()
	if !strings.Contains(hourText, "23.25 C") || !strings.Contains(hourText, "24.75 C") || !strings.Contains(hourText, "3 readings") ||
		strings.Contains(hourText, "10.5 C") {
		t.Fatalf("1 hour of readings:\n%s", hourText)
	}
	if !strings.Contains(hourSVG, `class="line"`) || !strings.Contains(hourSVG, `class="band"`) {
		t.Fatalf("1 hour chart has no line and band: %s", hourSVG)
	}
	b.click("nav[aria-label='Time range'] a[href*='range=7d']")
	weekSVG := b.eval(`document.querySelector("svg[data-chart=series]").outerHTML`)
	weekText := b.main()
	if weekSVG == hourSVG || !strings.Contains(weekText, "10.5 C") || !strings.Contains(weekText, "12.5 C") || !strings.Contains(weekText, "5 readings") ||
		!strings.Contains(weekSVG, `class="line"`) {
		t.Fatalf("7 days did not change the chart and the readings:\n%s", weekText)
	}
	if !strings.Contains(b.location(), "range=7d") {
		t.Fatalf("7 days link: at %s", b.location())
	}
	for _, text := range []string{hourText, weekText, hourSVG, weekSVG} {
		if m := regexp.MustCompile(`\d\.\d{5,}`).FindString(text); m != "" {
			t.Fatalf("unformatted number %q in the history page", m)
		}
	}
	if n, _ := strconv.Atoi(b.eval(`String(document.querySelectorAll("svg[data-chart=series] text.axis").length)`)); n < 4 {
		t.Fatalf("axis labels: %d", n)
	}
	b.shots("history-7d")
	b.darkShot("history-7d")
	// A custom range without readings.
	from := time.Now().Add(-100 * time.Hour).UTC().Format("2006-01-02T15:04")
	to := time.Now().Add(-90 * time.Hour).UTC().Format("2006-01-02T15:04")
	b.do(chromedp.SetValue(chromedp.ID("h-from"), from), chromedp.SetValue(chromedp.ID("h-to"), to))
	b.click("form.range button")
	if m := b.main(); !strings.Contains(m, "No readings in this range.") || strings.Contains(m, "24.75") {
		t.Fatalf("custom range:\n%s", m)
	}

	// A last-seen interval of 2 s: the monitor raises the alarm, the
	// thing page shows it live, the alarms page acknowledges it.
	b.open("/things/" + sensor)
	b.do(chromedp.SetValue(chromedp.ID("f-lsi"), "2"))
	b.click("#general form[action$='/general'] button.primary")
	b.eval(`window.wtMarker = "kept"; "ok"`)
	b.waitFor("the alarm on the thing page", `document.querySelector('[data-thing] [data-field=alarm]').textContent === "alarm"`, 20*time.Second)
	if got := b.eval(`String(window.wtMarker)`); got != "kept" {
		t.Fatalf("the page was reloaded for the alarm (marker %q)", got)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		b.open("/alarms")
		if b.eval(`String(document.querySelector("tr[data-alarm]") !== null)`) == "true" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no alarm in the list:\n%s", b.main())
		}
		time.Sleep(300 * time.Millisecond)
	}
	if m := b.main(); !strings.Contains(m, "TB7") || !strings.Contains(m, "active") {
		t.Fatalf("alarms:\n%s", m)
	}
	if href := b.eval(`document.querySelector("tr[data-alarm] a").getAttribute("href")`); href != "/things/"+sensor {
		t.Fatalf("the alarm links to %q", href)
	}
	b.shots("alarms")
	if st := b.click("tr[data-alarm] form button"); st != http.StatusOK {
		t.Fatalf("acknowledge: %d", st)
	}
	if m := b.main(); !strings.Contains(m, "Alarm acknowledged.") || !strings.Contains(m, "by admin@piot.local") {
		t.Fatalf("after acknowledging:\n%s", m)
	}
	// The thing reports again: the monitor clears the alarm and the list
	// drops it without a reload.
	b.eval(`window.wtMarker = "kept"; "ok"`)
	publish("org/farm/TB7/value", "25.5")
	b.waitFor("the cleared alarm leaving the list", `document.querySelector("[data-alarm-thing]") === null`, 3*time.Second)
	if got := b.eval(`String(window.wtMarker)`); got != "kept" || !strings.Contains(b.main(), "No active alarms.") {
		t.Fatalf("the alarms list after the alarm cleared (marker %q):\n%s", got, b.main())
	}
	wtGQL(t, a, tok, `mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`,
		map[string]any{"t": map[string]any{"id": sensor, "last_seen_interval": 0}})

	// The map: the device's position set in its Location section.
	b.open("/things/" + dev)
	b.do(chromedp.SetValue(chromedp.ID("f-lat"), "49.1951"), chromedp.SetValue(chromedp.ID("f-lng"), "16.6068"))
	b.click("#location form button.primary")
	wtGQL(t, a, tok, `mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`,
		map[string]any{"t": map[string]any{"id": sensor, "location_lat": 49.21, "location_lng": 16.58}})
	b.open("/map")
	for _, id := range []string{dev, sensor} {
		if got := b.eval(`String(document.querySelectorAll("svg[data-chart=map] a[href='/things/` + id + `']").length)`); got != "1" {
			t.Fatalf("map point of %s: %s\n%s", id, got, b.main())
		}
	}
	if m := b.main(); !strings.Contains(m, "49.1951") || !strings.Contains(m, "°N") || !strings.Contains(m, "°E") {
		t.Fatalf("map:\n%s", m)
	}
	b.shots("map")
	b.click("svg[data-chart=map] a[href='/things/" + dev + "']")
	if !strings.HasSuffix(b.location(), "/things/"+dev) {
		t.Fatalf("the map's point led to %s", b.location())
	}

	// A switch: its topics set in its Switch section; the toggle goes
	// through core's switch operation, which publishes the command.
	sw := wtGQL(t, a, tok, `mutation { createThing(name: "WTS1", type: "switch") { id } }`, nil)["createThing"].(map[string]any)["id"].(string)
	wtGQL(t, a, tok, `mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`, map[string]any{"t": map[string]any{"id": sw, "orgId": farm, "enabled": true}})
	commands := make(chan string, 4)
	if tk := mq.Subscribe("org/farm/WTS1/cmd", 1, func(_ paho.Client, m paho.Message) { commands <- string(m.Payload()) }); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("subscribe: %v", tk.Error())
	}
	b.open("/things/" + sw)
	if m := b.main(); !strings.Contains(m, "Switch on") || strings.Contains(m, "Measurement topic") {
		t.Fatalf("switch page sections:\n%s", m)
	}
	b.do(chromedp.SetValue(chromedp.ID("f-ctopic"), "WTS1/cmd"), chromedp.SetValue(chromedp.ID("f-con"), "ON"), chromedp.SetValue(chromedp.ID("f-coff"), "OFF"))
	b.click("#switch form[action$='/switch'] button.primary")
	b.shots("things-switch")
	for _, want := range []string{"ON", "OFF"} {
		b.click("#switch button.toggle")
		select {
		case got := <-commands:
			if got != want {
				t.Fatalf("command %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s command over MQTT", want)
		}
	}
	if m := b.main(); !strings.Contains(m, "Switched off.") || !strings.Contains(m, "Switch on") {
		t.Fatalf("after switching off:\n%s", m)
	}
	// Grafana's alert webhook sets the switch's alarm: the page shows it
	// without a reload.
	b.eval(`window.wtMarker = "kept"; "ok"`)
	alert := map[string]any{"alerts": []any{map[string]any{"status": "firing",
		"labels": map[string]any{"piot_alert": "thing_not_seen", "org": "farm", "thing": "WTS1"}}}}
	if st, out := post(t, a.url+"/alerts/grafana", alertToken, alert); st != http.StatusOK || out["applied"] != float64(1) {
		t.Fatalf("grafana alert: %d %v", st, out)
	}
	b.waitFor("Grafana's alarm on the switch page", `document.querySelector('[data-thing] [data-field=alarm]').textContent === "alarm"`, 10*time.Second)
	if got := b.eval(`String(window.wtMarker)`); got != "kept" {
		t.Fatalf("the page was reloaded for Grafana's alarm (marker %q)", got)
	}

	// Markup in a name is text on the list and the thing page.
	xss := wtGQL(t, a, tok, `mutation($n: String!) { createThing(name: $n, type: "sensor") { id } }`, map[string]any{"n": wtXSS})["createThing"].(map[string]any)["id"].(string)
	wtGQL(t, a, tok, `mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`, map[string]any{"t": map[string]any{"id": xss, "orgId": farm}})
	for _, p := range []string{"/things", "/things/all", "/things/" + xss, "/things/" + xss + "/history"} {
		b.open(p)
		if n := b.eval(`String(document.querySelectorAll("img").length)`); n != "0" {
			t.Fatalf("%s: %s <img> elements", p, n)
		}
		if !strings.Contains(b.main(), wtXSS) {
			t.Fatalf("%s does not show the name as text:\n%s", p, b.main())
		}
	}
	b.open("/things")
	b.shots("things-list")
	b.noAlerts()
	// Deleting asks first (the dialog is answered yes) and goes to the
	// list without it.
	b.open("/things/" + xss)
	if st := b.click("form[action='/things/" + xss + "/delete'] button"); st != http.StatusOK {
		t.Fatalf("delete: %d", st)
	}
	if m := b.main(); !strings.Contains(m, "Thing deleted.") || strings.Contains(m, wtXSS) || !strings.Contains(m, "WTDEV") {
		t.Fatalf("after deleting:\n%s", m)
	}
	b.mu.Lock()
	asked := strings.Join(b.confirms, "|")
	b.mu.Unlock()
	if !strings.Contains(asked, "Delete this thing?") {
		t.Fatalf("deleted without asking (asked %q)", asked)
	}

	// Bob, of barn, is refused farm's thing, also by typed URLs.
	bb := wtNewBrowser(t, a.url)
	bb.signIn(bobEmail, bobPW)
	for _, p := range []string{"/things/" + sensor, "/things/" + sensor + "/history", "/things/" + dev, "/things/all"} {
		if st := bb.open(p); st != http.StatusForbidden {
			t.Fatalf("bob at %s: %d", p, st)
		}
		if m := bb.main(); strings.Contains(m, "TB7") || strings.Contains(m, "WTDEV") {
			t.Fatalf("bob at %s sees farm's things:\n%s", p, m)
		}
	}
	bb.open("/things")
	if m := bb.main(); !strings.Contains(m, "BARN1") || strings.Contains(m, "TB7") {
		t.Fatalf("bob's things:\n%s", m)
	}
	bb.open("/alarms?show=all")
	if m := bb.main(); strings.Contains(m, "TB7") {
		t.Fatalf("bob sees farm's alarm:\n%s", m)
	}
	bb.shots("things-member")

	// Bob's event stream carries barn's thing, never farm's.
	stream := wtEvents(t, a, bobEmail, bobPW)
	barnMQ := mqttClient(t, a.mqttAddr, "barn-user", barnPW, "wt-barn")
	defer barnMQ.Disconnect(100)
	time.Sleep(300 * time.Millisecond)
	publish("org/farm/TB7/value", "30.5")
	if p := barnMQ.Publish("org/barn/BARN1/value", 1, false, "7.5"); !p.WaitTimeout(5*time.Second) || p.Error() != nil {
		t.Fatalf("publish barn: %v", p.Error())
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stream.String(), barnThing); {
		if time.Now().After(deadline) {
			t.Fatalf("bob's stream never carried BARN1:\n%s", stream)
		}
		time.Sleep(100 * time.Millisecond)
	}
	publish("org/farm/TB7/value", "31.5")
	time.Sleep(time.Second)
	if s := stream.String(); strings.Contains(s, sensor) || strings.Contains(s, dev) || strings.Contains(s, "30.5") || strings.Contains(s, "31.5") {
		t.Fatalf("bob's stream carried farm's thing:\n%s", s)
	}
	if !strings.Contains(stream.String(), `"value":"7.5 C"`) {
		t.Fatalf("bob's stream: %s", stream)
	}
	bb.noAlerts()
}

func (b *wtBrowser) location() string {
	b.t.Helper()
	u, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return u
}
