package tui

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/piot-appliance/piot/services/core"
)

// fakeWebhooks records test requests, refusing as the monitor does.
type fakeWebhooks struct {
	mu   sync.Mutex
	sent []core.ID
}

func (f *fakeWebhooks) TestWebhook(_ context.Context, a core.Actor, org core.ID) error {
	if err := core.AuthorizeAdmin(a, core.ActTestWebhook); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, org)
	return nil
}

// fakeAuthKeys is an authorized_keys of two keys and a line with options.
type fakeAuthKeys struct {
	mu   sync.Mutex
	keys []AuthorizedKey
}

func newFakeAuthKeys() *fakeAuthKeys {
	return &fakeAuthKeys{keys: []AuthorizedKey{
		{Line: 2, Fingerprint: "SHA256:laptopAAAA", Type: "ssh-ed25519", Comment: "alice@laptop"},
		{Line: 3, Fingerprint: "SHA256:consoleBBBB", Type: "ssh-ed25519", Comment: "piot-local-console"},
		{Line: 4, Fingerprint: "SHA256:restrictedC", Type: "ssh-rsa", Skipped: "options (from=\"10.0.0.1\") are not supported"},
	}}
}

func (f *fakeAuthKeys) List(_ context.Context, a core.Actor) (AuthorizedKeyFile, error) {
	if err := core.AuthorizeAdmin(a, core.ActAuthorizedKeys); err != nil {
		return AuthorizedKeyFile{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return AuthorizedKeyFile{Path: "/var/lib/piot/authorized_keys", Keys: append([]AuthorizedKey(nil), f.keys...)}, nil
}

func (f *fakeAuthKeys) Remove(_ context.Context, a core.Actor, fp string) (int, error) {
	if err := core.AuthorizeAdmin(a, core.ActAuthorizedKeys); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, k := range f.keys {
		if k.Fingerprint == fp {
			f.keys = append(f.keys[:i], f.keys[i+1:]...)
			return 1, nil
		}
	}
	return 0, core.NewError(core.CodeNotFound, "authorized_keys has no key "+fp)
}

func TestOrgDetailWebhookTokensStorage(t *testing.T) {
	w := newWorld(t)
	hooks := &fakeWebhooks{}
	h := newHarness(t, Deps{Core: w.core, Webhooks: hooks}, w.admin, 80, 24)
	h.key("3", "enter")
	s := h.waitFor("Organization acme", "webhook", "none", "metrics tokens", "0", "Members of acme")
	checkFits(t, s, 80, 24)

	// A test before a webhook is set: the monitor says why not.
	h.key("w")
	h.waitFor("Webhook of acme", "Empty URL: no webhook")
	h.typeText("ftp://hooks.example/piot")
	h.key("ctrl+s")
	s = h.waitFor("error: webhook URL must be an http(s) URL")
	checkFits(t, s, 80, 24)
	for range len("ftp://hooks.example/piot") {
		h.key("backspace")
	}
	h.typeText("https://hooks.example/piot")
	h.key("tab")
	h.typeText("s3cret")
	h.key("ctrl+s")
	h.waitFor("saved the webhook of acme", "https://hooks.example/piot · secret set")
	if n, _ := w.core.OrgNotificationSettings(w.admin, w.acme.ID); n.WebhookURL != "https://hooks.example/piot" || !n.WebhookSecretSet {
		t.Fatalf("core has %+v", n)
	}
	// Typing a secret and clearing it at once is refused, clearly.
	h.key("w")
	h.waitFor("A secret is set (not shown)")
	h.key("tab")
	h.typeText("other")
	h.key("tab", "y", "ctrl+s")
	h.waitFor("type a new one or clear it, not both")
	h.key("esc")
	h.key("t")
	h.waitFor("the webhook of acme accepted the test request")
	if len(hooks.sent) != 1 || hooks.sent[0] != w.acme.ID {
		t.Errorf("test requests: %v", hooks.sent)
	}

	// A metrics token is shown once and works; revoking it removes it.
	h.key("n")
	h.waitFor("New metrics token of acme", "sees only this org's things")
	h.key("enter")
	s = h.waitFor("token  piot_org_", "It is shown only now")
	checkFits(t, s, 80, 24)
	tok := regexp.MustCompile(`piot_org_\S+`).FindString(s)
	if org, ok := w.core.OrgByMetricsToken(tok); !ok || org != w.acme.ID {
		t.Fatalf("the token shown (%q) does not scrape acme", tok)
	}
	h.key("esc")
	s = h.waitFor("metrics tokens  1 · ")
	if strings.Contains(s, tok) {
		t.Fatal("the token is still on screen after closing")
	}
	h.key("v")
	h.waitFor("Revoke a metrics token of acme")
	h.key("enter")
	h.waitFor("revoked metrics token", "metrics tokens  0")
	if _, ok := w.core.OrgByMetricsToken(tok); ok {
		t.Fatal("the revoked token still scrapes")
	}

	// Storage settings: passwords write-only.
	h.key("s")
	h.waitFor("Storage settings of acme", "an empty one keeps the current")
	h.typeText("acme_db")
	h.key("tab")
	h.typeText("writer")
	h.key("tab")
	h.typeText("pw")
	h.key("ctrl+s")
	s = h.waitFor("saved the storage settings of acme", "database acme_db, user writer")
	if strings.Contains(s, "pw") {
		t.Errorf("a password is on screen:\n%s", s)
	}
	checkFits(t, s, 80, 24)
}

func TestOrgDetailMemberSeesOwnSettingsAndCoreRefusals(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	url := "https://hooks.example/acme"
	if _, err := w.core.SetOrgNotifications(ctx, w.admin, w.acme.ID, &url, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.core.CreateMetricsToken(ctx, w.admin, w.acme.ID); err != nil {
		t.Fatal(err)
	}
	other, err := w.core.CreateUser(ctx, w.admin, "other@acme.test", "other-password", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.core.AddOrgUser(ctx, w.admin, w.acme.ID, other.ID); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, Deps{Core: w.core, Webhooks: &fakeWebhooks{}}, w.member, 80, 24)
	h.key("3", "enter")
	s := h.waitFor("Organization acme", "https://hooks.example/acme · no secret", "member@acme.test")
	checkFits(t, s, 80, 24)
	if strings.Contains(s, "metrics tokens") {
		t.Errorf("a member sees the metrics tokens (core lists them to admins only):\n%s", s)
	}
	// Another member's opt-in is not the member's to read.
	if !strings.Contains(lineWith(s, "other@acme.test"), "–") {
		t.Errorf("another member's e-mail opt-in shown: %q", lineWith(s, "other@acme.test"))
	}
	for _, k := range []struct{ key, refusal string }{
		{"w", "only admins may change notification settings"},
		{"t", "only admins may send test webhooks"},
		{"n", "only admins may manage metrics tokens"},
		{"v", "only admins may manage metrics tokens"},
		{"s", "only admins may change organizations"},
	} {
		h.key(k.key)
		h.waitFor(k.refusal)
	}
	// Their own alarm e-mails: core lets them.
	h.key("/")
	h.typeText("member@")
	h.key("enter", "e")
	h.waitFor("alarm e-mails to member@acme.test: yes")
	if on, _ := w.core.UserNotify(w.admin, w.member.UserID); !on {
		t.Fatal("the opt-in was not stored")
	}
	h.waitRow("member@acme.test", "yes")
	// Somebody else's: core refuses.
	h.key("/", "ctrl+u")
	h.typeText("other@")
	h.key("enter", "e")
	h.waitFor("(FORBIDDEN)")
	if on, _ := w.core.UserNotify(w.admin, other.ID); on {
		t.Fatal("a member changed another member's opt-in")
	}
}

func TestUsersEmailsAndAuthorizedKeys(t *testing.T) {
	w := newWorld(t)
	ak := newFakeAuthKeys()
	h := newHarness(t, Deps{Core: w.core, AuthorizedKeys: ak}, w.admin, 80, 24)
	h.key("4")
	h.waitFor("2 users · 3 in authorized_keys (A)", "member@acme.test")
	h.key("/")
	h.typeText("member@")
	h.key("enter", "e")
	h.waitFor("alarm e-mails to member@acme.test: yes")
	if on, _ := w.core.UserNotify(w.admin, w.member.UserID); !on {
		t.Fatal("the opt-in was not stored")
	}

	h.key("esc", "A")
	s := h.waitFor("Keys of /var/lib/piot/authorized_keys", "from authorized_keys, logs in as the first admin (admin@piot.local)",
		"SHA256:laptopAAAA", "skipped: options")
	checkFits(t, s, 80, 24)
	h.key("j", "d")
	h.waitFor("Remove the key of line 3 (piot-local-console) from authorized_keys?")
	h.key("y")
	s = h.waitFor("removed SHA256:consoleBBBB from authorized_keys")
	h.waitUntil("the removed key still listed", func(s string) bool { return !strings.Contains(s, "consoleBBBB  ") })
	if len(ak.keys) != 2 {
		t.Errorf("keys left: %+v", ak.keys)
	}
	checkFits(t, s, 80, 24)
	h.key("esc")
	h.waitFor("2 users · 2 in authorized_keys (A)")
}

func TestDeviceAESKeyAndMQTTLogin(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	dev := w.thing(t, "gateway", "device", w.acme.ID)
	piot := "chip-42"
	if _, err := w.core.UpdateThing(ctx, w.admin, core.ThingUpdate{ID: dev.ID, PiotID: &piot}); err != nil {
		t.Fatal(err)
	}
	w.thing(t, "probe", "sensor", w.acme.ID)

	h := newHarness(t, Deps{Core: w.core}, w.admin, 80, 24)
	h.key("2")
	h.waitFor("gateway", "probe")
	h.key("/")
	h.typeText("gateway")
	h.key("enter", "enter")
	s := h.waitFor("gateway — device", "AES key", "none: packets are checked", "own MQTT login")
	checkFits(t, s, 80, 24)
	h.key("K")
	h.waitFor("AES key of gateway", "16 characters")
	h.typeText("short")
	h.key("ctrl+s")
	h.waitFor("error: an AES-128 key is exactly 16 bytes, got 5")
	h.typeText("-and-longer")
	h.key("ctrl+s")
	s = h.waitFor("set the AES key of gateway", "set (not shown)")
	if strings.Contains(s, "short-and-longer") {
		t.Fatal("the key is on screen")
	}
	if th, _ := w.core.Thing(w.admin, dev.ID); th.AESKey != "short-and-longer" {
		t.Fatalf("core has key %q", th.AESKey)
	}

	h.key("M")
	h.waitFor("Give gateway its own MQTT login", "thing:gateway")
	h.key("enter")
	s = h.waitFor("username  thing:gateway", "password  ")
	checkFits(t, s, 80, 24)
	pw := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(lineWith(s, "password  ")), "password"))
	if _, ok := w.core.VerifyMQTT("thing:gateway", pw); !ok {
		t.Fatalf("the password shown (%q) does not log in", pw)
	}
	h.key("esc")
	h.waitFor("own MQTT login", "thing:gateway")

	// The member of acme may clear the key (core lets whoever edits the
	// thing); the MQTT login is the admins'.
	m := newHarness(t, Deps{Core: w.core}, w.member, 80, 24)
	m.key("2")
	m.waitFor("gateway")
	m.key("/")
	m.typeText("gateway")
	m.key("enter", "enter")
	s = m.waitFor("gateway — device", "set (not shown)")
	m.key("?")
	if help := m.waitFor("AES key"); strings.Contains(help, "device MQTT login") {
		t.Errorf("a member is offered the MQTT login:\n%s", help)
	}
	m.key("?")
	m.key("M")
	m.waitFor("only admins may give devices MQTT credentials")
	m.key("K")
	m.waitFor("A key is set (not shown)")
	m.key("tab", "y", "ctrl+s")
	m.waitFor("cleared the AES key of gateway", "none: packets are checked")
	if th, _ := w.core.Thing(w.admin, dev.ID); th.AESKey != "" {
		t.Fatal("the key was not cleared")
	}
	checkFits(t, s, 80, 24)

	// A sensor has neither.
	m.key("esc", "/", "ctrl+u")
	m.typeText("probe")
	m.key("enter", "enter")
	s = m.waitFor("probe — sensor")
	if strings.Contains(s, "own MQTT login") || strings.Contains(s, "not shown") {
		t.Errorf("a sensor shows device secrets:\n%s", s)
	}
}

// objectCaptures renders the screens of the objects the API has for
// TestCaptures: an org's detail (admin and member), a metrics token shown
// once, the keys of authorized_keys and a device's secrets.
func objectCaptures(t *testing.T, w, h int, capture func(hs *harness, name string, want ...string)) {
	t.Helper()
	wd := newWorld(t)
	ctx := context.Background()
	url, secret := "https://hooks.example/acme", "s3cret"
	if _, err := wd.core.SetOrgNotifications(ctx, wd.admin, wd.acme.ID, &url, &secret); err != nil {
		t.Fatal(err)
	}
	db, user := "acme_readings", "writer"
	if _, err := wd.core.UpdateOrg(ctx, wd.admin, core.OrgUpdate{ID: wd.acme.ID, InfluxDB: &db, InfluxDBUsername: &user}); err != nil {
		t.Fatal(err)
	}
	if _, err := wd.core.SetUserNotify(ctx, wd.member, wd.member.UserID, true); err != nil {
		t.Fatal(err)
	}
	dev := wd.thing(t, "gateway", "device", wd.acme.ID)
	piot := "chip-42"
	if _, err := wd.core.UpdateThing(ctx, wd.admin, core.ThingUpdate{ID: dev.ID, PiotID: &piot}); err != nil {
		t.Fatal(err)
	}
	if _, err := wd.core.SetThingAESKey(ctx, wd.admin, dev.ID, "0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	if _, err := wd.core.SetThingMQTTCredentials(ctx, wd.admin, dev.ID); err != nil {
		t.Fatal(err)
	}

	hs := newHarness(t, Deps{Core: wd.core, Webhooks: &fakeWebhooks{}, AuthorizedKeys: newFakeAuthKeys()}, wd.admin, w, h)
	hs.key("3", "enter")
	hs.key("n")
	hs.waitFor("New metrics token of acme")
	hs.key("enter")
	capture(hs, "org-metrics-token", "token  piot_org_")
	hs.key("esc")
	capture(hs, "org-detail", "Organization acme", "metrics tokens  1", "acme_readings")
	hs.key("w")
	capture(hs, "org-webhook", "Webhook of acme", "A secret is set")
	hs.key("esc", "esc", "4")
	hs.waitFor("in authorized_keys (A)")
	hs.key("A")
	capture(hs, "users-authorized-keys", "from authorized_keys, logs in as the first admin", "alice@laptop")
	hs.key("esc", "2", "enter")
	capture(hs, "thing-device-secrets", "gateway — device", "set (not shown)", "thing:gateway")

	member := newHarness(t, Deps{Core: wd.core}, wd.member, w, h)
	member.key("3", "enter")
	capture(member, "org-detail-member", "Organization acme", "https://hooks.example/acme · secret set", "member@acme.test")
}
