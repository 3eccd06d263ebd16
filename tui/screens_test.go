package tui

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/piot-appliance/piot/services/core"
	"golang.org/x/crypto/ssh"
)

func TestOrgsCreateEditCredentialsMembers(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, Deps{Core: w.core}, w.admin, 80, 24)
	h.key("3")
	h.waitFor("1 organizations", "acme", "the first org")
	h.key("n")
	h.waitFor("New organization")
	h.typeText("bad/name")
	h.key("enter", "enter")
	h.waitFor("error: organization name must not contain '/'")
	for range len("/name") {
		h.key("backspace")
	}
	h.typeText("-co")
	h.key("enter")
	h.typeText("second org")
	h.key("enter")
	h.waitFor("created organization bad-co", "2 organizations")
	h.waitRow("bad-co", "second org")
	// Edit: rename.
	h.key("/")
	h.typeText("bad")
	h.key("enter", "e")
	h.waitFor("Edit organization bad-co")
	for range len("bad-co") {
		h.key("backspace")
	}
	h.typeText("good-co")
	h.key("ctrl+s")
	h.waitFor("saved organization good-co")
	h.key("esc")
	// MQTT credentials: the password is shown once, with a copy hint.
	h.key("/")
	h.typeText("good")
	h.key("enter", "m")
	h.waitFor("Set MQTT credentials of good-co", "MQTT username")
	h.key("enter")
	s := h.waitFor("MQTT credentials of good-co", "username  good-co", "password  ", "shown only now", "c to copy through")
	checkFits(t, s, 80, 24)
	pw := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(lineWith(s, "password  ")), "password"))
	if len(pw) < 16 {
		t.Fatalf("no password shown: %q", pw)
	}
	if _, ok := w.core.VerifyMQTT("good-co", pw); !ok {
		t.Fatal("the password shown does not log in")
	}
	h.key("c")
	h.waitFor("sent to the terminal's clipboard")
	h.key("esc")
	s = h.waitFor("good-co")
	if strings.Contains(s, pw) {
		t.Fatal("the password is still on screen after closing")
	}
	if !strings.Contains(lineWith(s, "good-co"), "good-co  ") && !strings.Contains(lineWith(s, "good-co"), "good-co") {
		t.Errorf("MQTT user not listed: %q", lineWith(s, "good-co"))
	}
	// Rotating says so.
	h.key("m")
	h.waitFor("Rotate MQTT credentials of good-co")
	h.key("esc")
	// Members: add the admin to good-co, then remove.
	h.key("enter")
	h.waitFor("Members of good-co", "no members")
	h.key("a")
	h.waitFor("Add a member to good-co")
	h.key("enter")
	s = h.waitFor("added a member to good-co")
	h.waitFor("admin@piot.local")
	h.key("d")
	h.waitFor("Remove admin@piot.local from good-co?")
	h.key("y")
	h.waitFor("removed admin@piot.local from good-co", "no members")
	checkFits(t, s, 80, 24)
	h.key("esc", "d")
	h.waitFor(`Delete organization "good-co"?`)
	h.key("y")
	h.waitFor("deleted organization good-co", "0 organizations")
	h.key("esc")
	h.waitFor("1 organizations", "acme")
}

func TestMemberSwitchesActiveOrg(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	other, err := w.core.CreateOrg(ctx, w.admin, "globex", "")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := w.core.Profile(w.member)
	if err := w.core.AddOrgUser(ctx, w.admin, other.ID, p.ID); err != nil {
		t.Fatal(err)
	}
	w.thing(t, "globex-pump", "sensor", other.ID)
	h := newHarness(t, Deps{Core: w.core}, w.member, 80, 24)
	h.key("3")
	h.waitFor("* acme", "globex")
	h.key("/")
	h.typeText("globex")
	h.key("enter", "space")
	h.waitFor("now working in globex", "* globex")
	h.key("2")
	h.waitFor("globex-pump")
}

func testKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " laptop"
}

func TestUsersCreateAdminPasswordOrgsKeys(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, Deps{Core: w.core}, w.admin, 80, 24)
	h.key("4")
	h.waitFor("2 users", "admin@piot.local", "member@acme.test")
	h.key("n")
	h.waitFor("New user", "Email", "Password")
	h.typeText("new@piot.local")
	h.key("enter")
	h.typeText("short")
	h.key("enter", "enter")
	h.waitFor("error: password must have at least 8 characters")
	h.typeText("-enough")
	s := h.screen()
	if strings.Contains(s, "short-enough") {
		t.Fatal("the password is echoed")
	}
	h.key("ctrl+s")
	h.waitFor("created user new@piot.local", "3 users")
	h.key("/")
	h.typeText("new@")
	h.key("enter")
	// Admin flag with confirmation.
	h.key("a", "y")
	h.waitFor("new@piot.local is now an admin")
	h.waitRow("new@piot.local", "yes")
	// Reset password: the two entries must match.
	h.key("p")
	h.typeText("another-password")
	h.key("enter")
	h.typeText("another-passwore")
	h.key("enter")
	h.waitFor("error: repeat: the two entries differ")
	h.key("backspace")
	h.typeText("d")
	h.key("enter")
	h.waitFor("password of new@piot.local changed")
	if _, err := w.core.Login(context.Background(), "new@piot.local", "another-password"); err != nil {
		t.Fatalf("new password does not log in: %v", err)
	}
	// Detail: orgs and SSH keys.
	h.key("enter")
	h.waitFor("SSH keys (console logins)", "no SSH keys")
	h.key("o", "enter")
	h.waitFor("added to acme", "organizations: acme")
	h.key("n")
	h.waitFor("Add an SSH key for new@piot.local")
	h.typeText("not a key")
	h.key("enter")
	h.waitFor("error: not a single OpenSSH public key")
	for range len("not a key") {
		h.key("backspace")
	}
	h.typeText(testKey(t))
	h.key("enter")
	s = h.waitFor("added key SHA256:", "laptop")
	checkFits(t, s, 80, 24)
	h.key("d", "y")
	h.waitFor("removed key SHA256:", "no SSH keys")
	// Two keys pasted at once (a one-line field joins the lines) are two
	// keys, not one with the other as its comment.
	h.key("n")
	h.waitFor("Add an SSH key for new@piot.local")
	h.send(tea.PasteMsg{Content: testKey(t) + "\n" + testKey(t) + "\n"})
	h.key("enter")
	s = h.waitFor("2 keys added for new@piot.local")
	if n := strings.Count(s, "laptop"); n != 2 {
		t.Fatalf("%d keys listed, want 2:\n%s", n, s)
	}
	h.key("d", "y")
	h.waitFor("removed key SHA256:")
	h.key("d", "y")
	h.waitFor("removed key SHA256:", "no SSH keys")
	h.key("O", "enter")
	h.waitFor("removed from acme", "organizations: –")
	h.key("esc")
	h.waitFor("1 users", "filter: new@")
	h.key("d", "y")
	h.waitFor("deleted user new@piot.local", "0 users")
	h.key("esc")
	h.waitFor("2 users")
	// Nobody deletes themselves: core's message lands in the status line.
	h.key("/")
	h.typeText("admin@")
	h.key("enter", "d", "y")
	h.waitFor("error: you cannot delete yourself (BAD_USER_INPUT)")
}

type fakeFeed struct {
	mu        sync.Mutex
	filters   []string
	ch        chan LiveMessage
	published []LiveMessage
}

func (f *fakeFeed) Subscribe(ctx context.Context, a core.Actor, filter string) (<-chan LiveMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !a.Admin && !strings.HasPrefix(filter, "org/acme/") {
		return nil, &core.Error{Code: core.CodeForbidden, Msg: "you may follow only your organization's topics"}
	}
	f.filters = append(f.filters, filter)
	f.ch = make(chan LiveMessage, 100)
	return f.ch, nil
}

func (f *fakeFeed) send(m LiveMessage) {
	f.mu.Lock()
	ch := f.ch
	f.mu.Unlock()
	ch <- m
}

func TestLiveFollowPauseFilter(t *testing.T) {
	w := newWorld(t)
	feed := &fakeFeed{}
	h := newHarness(t, Deps{Core: w.core, Live: feed}, w.member, 80, 24)
	h.key("5")
	h.waitFor("org/acme/#", "following", "waiting for messages")
	feed.send(LiveMessage{Time: testNow, Topic: "org/acme/boiler/temp", Payload: []byte(`{"t":21.5}`)})
	feed.send(LiveMessage{Time: testNow, Topic: "org/acme/blob", Payload: []byte{0xff, 0x00, 0x10}, Retained: true, QoS: 1})
	feed.send(LiveMessage{Time: testNow, Topic: "org/acme/long", Payload: []byte(strings.Repeat("x", 500))})
	feed.send(LiveMessage{Time: testNow, Topic: "org/acme/evil", Payload: []byte("\x1b[2Jboom")})
	s := h.waitFor(`org/acme/boiler/temp {"t":21.5}`, "r1 org/acme/blob <3 B> ff0010", "…(500 B)", "·[2Jboom")
	checkFits(t, s, 80, 24)
	h.key("space")
	h.waitFor("PAUSED, 0 new")
	feed.send(LiveMessage{Time: testNow, Topic: "org/acme/late", Payload: []byte("x")})
	h.waitFor("PAUSED, 1 new")
	h.key("space")
	h.waitFor("following")
	// Another org's topics are refused by the feed; the error shows.
	h.key("/")
	for range len("org/acme/#") {
		h.key("backspace")
	}
	h.typeText("org/globex/#")
	h.key("enter")
	h.waitFor("error: you may follow only your organization's topics (FORBIDDEN)")
	h.key("/")
	for range len("org/globex/#") {
		h.key("backspace")
	}
	h.typeText("org/acme/boiler/+")
	h.key("enter")
	h.waitFor("org/acme/boiler/+", "following", "0 messages kept")
}

func TestLiveNotAvailable(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, Deps{Core: w.core}, w.admin, 80, 24)
	h.key("5")
	h.waitFor("Live MQTT is not available")
}

type fakeAlarms struct {
	mu    sync.Mutex
	acked []string
}

func (f *fakeAlarms) Active(context.Context, core.Actor) ([]Alarm, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	al := Alarm{ID: "a1", Thing: "boiler", Org: "acme", Kind: "last-seen", Severity: "critical", Message: "not seen for 20m", Raised: testNow.Add(-20 * time.Minute)}
	if len(f.acked) > 0 {
		al.AckedBy = "admin@piot.local"
	}
	return []Alarm{al}, nil
}

func (f *fakeAlarms) Recent(context.Context, core.Actor, int) ([]Alarm, error) {
	return []Alarm{{ID: "a0", Thing: "pump", Org: "acme", Kind: "grafana", Message: "pressure low", Raised: testNow.Add(-2 * time.Hour), Cleared: testNow.Add(-time.Hour)}}, nil
}

func (f *fakeAlarms) Acknowledge(_ context.Context, a core.Actor, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acked = append(f.acked, id+" by "+a.Email)
	return nil
}

func TestAlarmsFromService(t *testing.T) {
	w := newWorld(t)
	al := &fakeAlarms{}
	h := newHarness(t, Deps{Core: w.core, Alarms: al}, w.admin, 80, 24)
	h.key("6")
	s := h.waitFor("Active (1)", "boiler", "20m ago", "critical not seen", "Recent", "pump", "cleared 1h ago")
	checkFits(t, s, 80, 24)
	h.key("a")
	s = h.waitFor("alarm acknowledged", "admin@pio")
	checkFits(t, s, 80, 24)
	if len(al.acked) != 1 || al.acked[0] != "a1 by admin@piot.local" {
		t.Fatalf("acknowledged %v", al.acked)
	}
	h.key("1")
	h.waitFor("1 active")
}

func TestAlarmsFallbackToThingFlags(t *testing.T) {
	w := newWorld(t)
	th := w.thing(t, "boiler", "sensor", w.acme.ID)
	if _, err := w.core.SetThingAlarm(context.Background(), w.admin, th.ID, true); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, Deps{Core: w.core}, w.member, 80, 24)
	h.key("6")
	h.waitFor("alarm service is not connected", "Active (1)", "boiler", "acme")
	h.key("a")
	h.waitFor("acknowledging needs the alarm service")
}

type fakeSystem struct {
	mu      sync.Mutex
	actions []string
	logs    []string
	total   uint64
	upd     *UpdateInfo // nil: not booted from a slot
}

func (f *fakeSystem) Listeners() []Listener {
	return []Listener{
		{Name: "mqtt-tls", Addr: ":8883", TLS: true, CertSHA: "SHA256:abc", Expires: testNow.Add(24 * time.Hour)},
		{Name: "ssh", Addr: ":2222", CertSHA: "SHA256:hostkey"},
	}
}

func (f *fakeSystem) LogTail(n int) []string {
	var l []string
	for i := range 100 {
		l = append(l, "log line "+strings.Repeat("x", i%5)+" #"+string(rune('A'+i%26)))
	}
	return l
}

// Logs has core decide, as the real adapter does. The lines carry every
// level, and one is long enough to need wrapping.
func (f *fakeSystem) Logs(_ context.Context, a core.Actor) (LogSnapshot, error) {
	if err := core.AuthorizeAdmin(a, core.ActReadLogs); err != nil {
		return LogSnapshot{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.logs == nil {
		for i := range 300 {
			lv := []string{"DEBUG", "INFO", "INFO", "WARN", "ERROR"}[i%5]
			f.logs = append(f.logs, fmt.Sprintf("time=2026-05-01T11:%02d:%02d level=%s msg=\"event %d\" thing=boiler-%d", i/60, i%60, lv, i, i%7))
		}
		f.logs = append(f.logs, "time=2026-05-01T11:59:59 level=WARN msg=\"a long line\" detail=\""+strings.Repeat("word ", 60)+"END\"")
		f.total = uint64(len(f.logs))
	}
	return LogSnapshot{Lines: slices.Clone(f.logs), Total: f.total}, nil
}

// logMore appends n lines, as the process would while the screen is shown.
func (f *fakeSystem) logMore(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.total++
		f.logs = append(f.logs, fmt.Sprintf("time=2026-05-01T12:00:00 level=INFO msg=\"later %d\"", f.total))
	}
}

func (f *fakeSystem) record(a core.Actor, what string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !a.Admin {
		return &core.Error{Code: core.CodeForbidden, Msg: "not allowed"}
	}
	f.actions = append(f.actions, what)
	return nil
}

func (f *fakeSystem) RegenerateTLS(_ context.Context, a core.Actor) error { return f.record(a, "tls") }
func (f *fakeSystem) Backup(_ context.Context, a core.Actor, path string) (string, error) {
	return "/data/backups/x.piot", f.record(a, "backup:"+path)
}
func (f *fakeSystem) Restore(_ context.Context, a core.Actor, path string) error {
	return f.record(a, "restore:"+path)
}
func (f *fakeSystem) Reboot(context.Context, core.Actor) error   { return ErrUnsupported }
func (f *fakeSystem) PowerOff(context.Context, core.Actor) error { return ErrUnsupported }
func (f *fakeSystem) OSSettings(context.Context, core.Actor) (OSSettings, error) {
	return OSSettings{Hostname: "piot", Network: "dhcp", Timezone: "UTC"}, nil
}
func (f *fakeSystem) Updates(_ context.Context, a core.Actor) (UpdateInfo, error) {
	if err := core.AuthorizeAdmin(a, core.ActUpdate); err != nil {
		return UpdateInfo{}, err
	}
	if f.upd == nil {
		return UpdateInfo{}, ErrUnsupported
	}
	return *f.upd, nil
}
func (f *fakeSystem) FetchUpdate(_ context.Context, a core.Actor, url string) error {
	if err := core.AuthorizeAdmin(a, core.ActUpdate); err != nil {
		return err
	}
	if f.upd == nil {
		return ErrUnsupported
	}
	if !strings.HasPrefix(url, "https://") {
		return core.NewError(core.CodeBadInput, "url: want the bundle's http:// or https:// address")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions = append(f.actions, "fetch:"+url)
	f.upd.Download = &UpdateDownload{URL: url, Done: 7 << 20, Total: 28 << 20, Running: true}
	return nil
}
func (f *fakeSystem) SetOSSettings(_ context.Context, a core.Actor, s OSSettings) error {
	return f.record(a, "os:"+s.Hostname+","+s.Network)
}

func TestSystemScreen(t *testing.T) {
	w := newWorld(t)
	sys := &fakeSystem{}
	h := newHarness(t, Deps{Core: w.core, System: sys}, w.admin, 80, 24)
	h.key("7")
	s := h.waitFor("Network", "Listeners", "mqtt-tls", ":8883", "TLS", "SHA256:abc", "expires 2026-05-02", "SHA256:hostkey", "Log", "log line")
	checkFits(t, s, 80, 24)
	h.key("g")
	h.waitFor("Reissue the MQTT server certificate?")
	h.key("y")
	h.waitFor("TLS certificates regenerated")
	h.key("b", "enter")
	h.waitFor("backup written to /data/backups/x.piot")
	h.key("R")
	h.typeText("/data/backups/x.piot")
	h.key("enter", "enter")
	h.waitFor("Replace all current data: say yes to restore")
	h.key("y", "enter")
	h.waitFor("restore scheduled")
	h.key("B", "y")
	h.waitFor("error: not supported on this appliance")
	if strings.Join(sys.actions, ",") != "tls,backup:,restore:/data/backups/x.piot" {
		t.Fatalf("actions: %v", sys.actions)
	}
}

// TestSystemScreenShowsARollback: the System screen says which slot runs
// and why an update was rolled back (issue 14).
func TestSystemScreenShowsARollback(t *testing.T) {
	w := newWorld(t)
	sys := &fakeSystem{upd: &UpdateInfo{Version: "v1.2.0", Slot: "a", OtherSlotVersion: "v1.3.0", OtherSlotState: "bad",
		LastResult: "rolled-back", LastVersion: "v1.3.0", LastAt: testNow.Add(-time.Hour),
		LastReason: "slot b did not become ready in 3 boots; boot 3 of 3: piot run exited 3 times", RebootAt: testNow.Add(time.Hour)}}
	h := newHarness(t, Deps{Core: w.core, System: sys}, w.admin, 80, 24)
	h.key("7")
	s := h.waitFor("Updates", "running v1.2.0 from slot a · other slot: v1.3.0 (bad)", "last update: rolled-back v1.3.0",
		"slot b did not become ready in 3 boots", "reboot scheduled at", "Listeners")
	checkFits(t, s, 80, 24)

	// Install from a URL the appliance fetches itself, with progress.
	h.key("u")
	h.waitFor("Install an update", "Bundle URL")
	h.typeText("ftp://x")
	h.key("enter")
	h.waitFor("want the bundle's http:// or https:// address")
	h.key("ctrl+u")
	h.typeText("https://updates.example/piot-v1.4.0.bundle")
	h.key("enter")
	s = h.waitFor("downloading https://updates.example/piot-v1.4.0.bundle", "downloading 25% (7.0 MiB of 28.0 MiB)")
	checkFits(t, s, 80, 24)
}

// TestControlCharactersNeverReachTheTerminal: text stored through the API
// (descriptions, telemetry) or sent by devices may hold escape sequences;
// the console shows them inert.
func TestControlCharactersNeverReachTheTerminal(t *testing.T) {
	w := newWorld(t)
	th := w.thing(t, "boiler", "sensor", w.acme.ID)
	evil := "hi\x1b[2J\x1b]52;c;ZXZpbA==\x07there"
	if _, err := w.core.UpdateThing(context.Background(), w.admin, core.ThingUpdate{ID: th.ID, Description: &evil, Alias: &evil}); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, Deps{Core: w.core}, w.admin, 80, 24)
	raw := func() string { return h.m.View().Content }
	h.key("2")
	h.waitFor("boiler")
	for _, step := range [][]string{{}, {"enter"}, {"e"}} {
		h.key(step...)
		if s := raw(); strings.Contains(s, "\x1b[2J") || strings.Contains(s, "\x1b]52") {
			t.Fatalf("escape sequence passed through after %v: %q", step, s)
		}
	}
	h.waitFor("hi·[2J")
	// Saving an untouched form does not rewrite the stored text.
	h.key("ctrl+s")
	h.waitFor("saved boiler")
	got, _ := w.core.Thing(w.admin, th.ID)
	if got.Description != evil {
		t.Fatalf("description rewritten to %q", got.Description)
	}
}

func TestPasteGoesToTheFocusedField(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, Deps{Core: w.core}, w.admin, 80, 24)
	h.key("4")
	h.waitFor("member@acme.test")
	h.key("/")
	h.typeText("member")
	h.key("enter", "enter", "n")
	h.waitFor("Add an SSH key for member@acme.test")
	h.send(tea.PasteMsg{Content: testKey(t)})
	h.key("enter")
	h.waitFor("added key SHA256:", "laptop")
}
