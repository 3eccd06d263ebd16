package tui

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// fakeClients is a broker with clients of acme and globex and a monitor,
// scoped by core as the backend scopes them; it records the actions.
type fakeClients struct {
	core *core.Core

	mu       sync.Mutex
	clients  []MQTTClient
	retained []RetainedMessage
	did      []string
}

func newFakeClients(c *core.Core) *fakeClients {
	since := testNow.Add(-3 * time.Minute)
	return &fakeClients{core: c,
		clients: []MQTTClient{
			{Session: "acme-mqtt/boiler-1", ClientID: "boiler-1", Username: "acme-mqtt", Org: "acme", Remote: "192.0.2.7:50211",
				Listener: "mqtt", Protocol: "3.1.1", Since: since, Connected: true,
				Subscriptions: []MQTTSubscription{{Filter: "org/acme/boiler/cmd/#", QoS: 1}, {Filter: "org/acme/time", QoS: 0}},
				Inflight:      2, QueuedBytes: 1500},
			{Session: "thing:pump/pump", ClientID: "pump", Username: "thing:pump", Org: "acme", Thing: "pump", Remote: "192.0.2.8:40100",
				Listener: "mqtts", Protocol: "5", Since: since, Connected: true},
			{Session: "acme-mqtt/logger", ClientID: "logger", Username: "acme-mqtt", Org: "acme", Protocol: "5",
				Since: testNow.Add(-2 * time.Hour), Expires: testNow.Add(22 * time.Hour), Persistent: true,
				Subscriptions: []MQTTSubscription{{Filter: "org/acme/#", QoS: 1}}, Inflight: 12},
			{Session: "globex-mqtt/secret-dev", ClientID: "secret-dev", Username: "globex-mqtt", Org: "globex",
				Remote: "198.51.100.9:1234", Listener: "mqtt", Protocol: "5", Since: since, Connected: true},
			{Session: "monitor/grafana", ClientID: "grafana", Username: "monitor", Remote: "127.0.0.1:5000",
				Listener: "mqtt", Protocol: "3.1.1", Since: since, Connected: true},
		},
		retained: []RetainedMessage{
			{Topic: "org/acme/boiler/config", Org: "acme", Payload: []byte(`{"setpoint":21.5}`), QoS: 1, Created: testNow.Add(-5 * time.Hour)},
			{Topic: "org/globex/secret", Org: "globex", Payload: []byte("x"), Created: testNow},
		},
	}
}

func (f *fakeClients) visible(a core.Actor, org string) bool {
	scope, err := f.core.MQTTScope(a)
	if err != nil {
		return false
	}
	id, _ := f.core.OrgOfTopic("org/" + org + "/x")
	return scope.Includes(id)
}

func (f *fakeClients) Clients(_ context.Context, a core.Actor) ([]MQTTClient, error) {
	if _, err := f.core.MQTTScope(a); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []MQTTClient
	for _, c := range f.clients {
		if f.visible(a, c.Org) {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeClients) Retained(_ context.Context, a core.Actor) ([]RetainedMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []RetainedMessage
	for _, m := range f.retained {
		if f.visible(a, m.Org) {
			out = append(out, m)
		}
	}
	return out, nil
}

func (f *fakeClients) act(what, k string, drop func()) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.did = append(f.did, what+" "+k)
	drop()
	return nil
}

func (f *fakeClients) Disconnect(_ context.Context, _ core.Actor, session string) error {
	return f.act("disconnect", session, func() {
		// A clean session ends with its connection.
		f.clients = slices.DeleteFunc(f.clients, func(c MQTTClient) bool { return c.Session == session && !c.Persistent })
	})
}

func (f *fakeClients) DeleteSession(_ context.Context, _ core.Actor, session string) error {
	return f.act("delete-session", session, func() {
		f.clients = slices.DeleteFunc(f.clients, func(c MQTTClient) bool { return c.Session == session })
	})
}

func (f *fakeClients) DeleteRetained(_ context.Context, _ core.Actor, topic string) error {
	return f.act("delete-retained", topic, func() {
		f.retained = slices.DeleteFunc(f.retained, func(m RetainedMessage) bool { return m.Topic == topic })
	})
}

func (f *fakeClients) actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.did)
}

func clientsWorld(t *testing.T) (*world, *fakeClients) {
	t.Helper()
	w := newWorld(t)
	if _, err := w.core.CreateOrg(context.Background(), w.admin, "globex", ""); err != nil {
		t.Fatal(err)
	}
	return w, newFakeClients(w.core)
}

// TestClientsView: C on Live opens the view, its three lists, a client's
// detail with subscriptions, a confirmed disconnect and deletions, and
// esc back to Live; every frame fits 80×24.
func TestClientsView(t *testing.T) {
	w, fc := clientsWorld(t)
	h := newHarness(t, Deps{Core: w.core, Live: &fakeFeed{}, Clients: fc}, w.admin, 80, 24)
	h.key("5")
	h.waitFor("following", "C clients")
	h.key("C")
	s := h.waitFor("[Connected (4)]", "Sessions (1)", "Retained (2)", "boiler-1", "secret-dev", "grafana", "192.0.2.7:50211", "3m ago")
	checkFits(t, s, 80, 24)
	if !strings.Contains(lineWith(s, "boiler-1"), "2/1.5 kB") {
		t.Errorf("inflight/queued missing:\n%s", s)
	}
	if !strings.Contains(lineWith(s, "grafana"), "monitor") {
		t.Errorf("the monitor is not named:\n%s", s)
	}
	if strings.Contains(s, "logger") {
		t.Errorf("an offline session among the connected clients:\n%s", s)
	}

	h.key("enter")
	s = h.waitFor("Connected — acme-mqtt/boiler-1", "org/acme/boiler/cmd/#  QoS 1", "subscriptions (2)", "2 messages, 1.5 kB queued", "3.1.1")
	checkFits(t, s, 80, 24)
	h.key("d")
	h.waitFor(`Disconnect client "boiler-1" of acme?  [y/N]`)
	h.key("n")
	h.waitFor("cancelled")
	if got := fc.actions(); len(got) != 0 {
		t.Fatalf("cancelled action ran: %v", got)
	}
	h.key("d", "y")
	h.waitFor("disconnected boiler-1")
	// Offline and not persistent, it left the list: the detail closes.
	s = h.waitFor("[Connected (3)]")
	if strings.Contains(s, "boiler-1  ") || !slices.Equal(fc.actions(), []string{"disconnect acme-mqtt/boiler-1"}) {
		t.Fatalf("after disconnect %v:\n%s", fc.actions(), s)
	}

	h.key("tab")
	s = h.waitFor("[Sessions (1)]", "logger", "2h ago", "in 22h")
	checkFits(t, s, 80, 24)
	h.key("enter")
	h.waitFor("Sessions — acme-mqtt/logger", "offline 2h ago, dropped in 22h", "persistent", "org/acme/#  QoS 1")
	h.key("esc", "d")
	h.waitFor(`Delete the session of "logger" with its subscriptions and 12 kept messages?`)
	h.key("y")
	h.waitFor("deleted the session of logger", "[Sessions (0)]", "no persistent session kept")

	h.key("s")
	s = h.waitFor("[Retained (2)]", "org/acme/boiler/config", "17 B", "5h ago", "org/globex/secret")
	checkFits(t, s, 80, 24)
	h.key("enter")
	h.waitFor("Retained — org/acme/boiler/config", `{"setpoint":21.5}`, "2026-05-01 07:00:00 UTC")
	h.key("d", "y")
	h.waitFor("deleted the retained message of org/acme/boiler/config", "[Retained (1)]")

	// Help names the view's keys; esc goes back to Live.
	h.key("?")
	h.waitFor("Keys — Clients", "next list", "disconnect/delete")
	h.key("esc", "esc")
	s = h.waitFor("[5 Live]", "following")
	if strings.Contains(s, "Retained (") {
		t.Fatalf("esc did not leave the view:\n%s", s)
	}
	// A tab key while the view is open leaves it too.
	h.key("C")
	h.waitFor("[Connected (3)]")
	h.key("2")
	s = h.waitFor("[2 Things]")
	if strings.Contains(s, "Connected (") {
		t.Fatalf("the view stayed over Things:\n%s", s)
	}
}

// TestClientsViewMemberScope: a member sees only their org's clients,
// sessions and retained messages; the monitor and globex stay hidden.
func TestClientsViewMemberScope(t *testing.T) {
	w, fc := clientsWorld(t)
	h := newHarness(t, Deps{Core: w.core, Live: &fakeFeed{}, Clients: fc}, w.member, 80, 24)
	h.key("5", "C")
	s := h.waitFor("[Connected (2)]", "boiler-1", "Sessions (1)", "Retained (1)")
	if !strings.Contains(lineWith(s, "pump"), "thing:pu") {
		t.Errorf("the device's own credentials are not shown:\n%s", s)
	}
	checkFits(t, s, 80, 24)
	for _, hidden := range []string{"secret-dev", "grafana", "globex"} {
		if strings.Contains(s, hidden) {
			t.Errorf("member sees %q:\n%s", hidden, s)
		}
	}
	h.key("s", "s")
	s = h.waitFor("[Retained (1)]", "org/acme/boiler/config")
	if strings.Contains(s, "globex") {
		t.Errorf("member sees globex's retained message:\n%s", s)
	}
}

// TestClientsViewUnavailable: without the broker the view says so.
func TestClientsViewUnavailable(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, Deps{Core: w.core, Live: &fakeFeed{}}, w.admin, 80, 24)
	h.key("5", "C")
	checkFits(t, h.waitFor("MQTT clients are not available"), 80, 24)
}
