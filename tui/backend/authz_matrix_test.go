package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/broker"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
	"github.com/piot-appliance/piot/services/monitor"
	"github.com/piot-appliance/piot/tui"
)

// The console backend's authorization matrix, the counterpart of
// tests/authz_matrix_test.go for what the console does without GraphQL:
// every operation of this package that takes an actor, run by every kind
// of caller against org A's objects. Outcomes: cmOK, cmHidden (the call
// succeeds but org A's object is not in its answer), cmUnsupported (allowed,
// but this test's appliance cannot do it: no OS control, no broker TLS),
// or core's error code.
const (
	cmOK          = "ok"
	cmHidden      = "hidden"
	cmUnsupported = "unsupported"
	cmForbidden   = string(core.CodeForbidden)
	cmUnauth      = string(core.CodeUnauthenticated)
)

// Actors of the console matrix, in the order of cmWant's fields.
var cmActors = []string{"admin", "memberA", "memberB", "nonmember", "anonymous"}

type cmWant [5]string

var (
	cmAdminOnly   = cmWant{cmOK, cmForbidden, cmForbidden, cmForbidden, cmUnauth}
	cmAdminOnlyNA = cmWant{cmUnsupported, cmForbidden, cmForbidden, cmForbidden, cmUnauth}
	cmOrgA        = cmWant{cmOK, cmOK, cmForbidden, cmForbidden, cmUnauth}
	cmOrgAListed  = cmWant{cmOK, cmOK, cmHidden, cmHidden, cmUnauth}
)

type cmRow struct {
	op   string // Type.Method
	what string
	want cmWant
	run  func(ctx context.Context, a core.Actor) (string, error)
}

// idleFollower is a broker that accepts every follow and sends nothing:
// the live feed authorizes before it follows.
type idleFollower struct{}

func (idleFollower) Follow(ctx context.Context, _ string, _ int) (<-chan broker.Message, error) {
	ch := make(chan broker.Message)
	go func() { <-ctx.Done(); close(ch) }()
	return ch, nil
}

func (idleFollower) PublishMessage(context.Context, string, []byte, byte, bool) error { return nil }

// fixedBroker holds one client and one retained message per org it is
// given, and a monitor client of no org; its actions always succeed, so
// every actor's outcome is core's decision alone.
type fixedBroker struct {
	clients  []broker.Client
	retained []broker.RetainedMessage
}

func (f *fixedBroker) Clients() []broker.Client { return f.clients }
func (f *fixedBroker) Client(session string) (broker.Client, bool) {
	i := slices.IndexFunc(f.clients, func(c broker.Client) bool { return c.Session == session })
	if i < 0 {
		return broker.Client{}, false
	}
	return f.clients[i], true
}
func (f *fixedBroker) Disconnect(string) error            { return nil }
func (f *fixedBroker) DeleteSession(string) error         { return nil }
func (f *fixedBroker) Retained() []broker.RetainedMessage { return f.retained }
func (f *fixedBroker) DeleteRetained(string) error        { return nil }

func outcome(found bool) string {
	if found {
		return cmOK
	}
	return cmHidden
}

func TestConsoleAuthorizationMatrix(t *testing.T) {
	ctx := context.Background()
	a, b := newTenant(t, "cma"), newTenant(t, "cmb")
	actors := map[string]core.Actor{
		"admin": fx.admin, "memberA": newMember(t, a.org.ID), "memberB": newMember(t, b.org.ID),
		"nonmember": newMember(t), "anonymous": core.Anonymous(),
	}

	// Org A's thing, silent for longer than its interval: it has an alarm.
	th := sensorThing(t, nil, a, "cmthing")
	interval := int64(1)
	if _, err := fx.c.UpdateThing(ctx, fx.admin, core.ThingUpdate{ID: th.ID, LastSeenInterval: &interval}); err != nil {
		t.Fatal(err)
	}
	fx.c.UpdateThingState(th.ID, func(t *core.Thing) bool { t.LastSeen = time.Now().Unix() - 10; return true })
	mon, err := monitor.New(monitor.Config{Logger: quiet}, monitor.Deps{Core: fx.c, Store: fx.st})
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mon.Stop(context.Background()) })
	var alarmID string
	eventually(t, 10*time.Second, "the alarm of org A's thing", func() bool {
		for _, al := range mon.Alarms(nil) {
			if al.ThingID == th.ID {
				alarmID = al.ID
				return true
			}
		}
		return false
	})
	alarms := NewAlarms(mon)
	listed := func(als []tui.Alarm, err error) (string, error) {
		return outcome(slices.ContainsFunc(als, func(al tui.Alarm) bool { return al.ID == alarmID })), err
	}

	hist, err := history.New(fx.st, history.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	hs := NewHistory(fx.c, hist, nil)
	live := NewLive(fx.c, idleFollower{}, 0, 0)
	follow := func(ctx context.Context, who core.Actor, filter string) (string, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		_, err := live.Subscribe(ctx, who, filter)
		return cmOK, err
	}
	mqttClients := NewClients(fx.c, &fixedBroker{
		clients: []broker.Client{
			{Session: a.username + "/dev", OrgID: a.org.ID, Org: a.org.Name},
			{Session: "monitor/m", Monitor: true},
		},
		retained: []broker.RetainedMessage{{Topic: a.topic("cfg")}, {Topic: "outside/cfg"}},
	})
	listedClient := func(cs []tui.MQTTClient, err error) (string, error) {
		return outcome(slices.ContainsFunc(cs, func(c tui.MQTTClient) bool { return c.Session == a.username+"/dev" })), err
	}
	listedRetained := func(ms []tui.RetainedMessage, err error) (string, error) {
		return outcome(slices.ContainsFunc(ms, func(m tui.RetainedMessage) bool { return m.Topic == a.topic("cfg") })), err
	}
	dir := t.TempDir()
	sys := NewSystem(SystemConfig{DataDir: dir, Version: "test", Core: fx.c, Logger: quiet, Logs: NewLogRing(10, slog.LevelInfo)})
	backup, err := sys.Backup(ctx, fx.admin, "")
	if err != nil {
		t.Fatal(err)
	}
	done := func(err error) (string, error) { return cmOK, err }
	bk := NewBackups(sys)
	// Each restore row schedules its own restore as the admin, so every
	// caller finds one to cancel or apply.
	scheduled := func(fn func() error) (string, error) {
		if err := sys.Restore(ctx, fx.admin, backup); err != nil {
			t.Fatal(err)
		}
		return done(fn())
	}
	keys := NewAuthorizedKeys(fx.c, dir)
	keyLines := ""
	for range 5 { // one for each actor: only the admin's removal takes one
		keyLines += authorizedKeyLine(t) + "\n"
	}
	writeFile(t, filepath.Join(dir, "authorized_keys"), keyLines)
	nextKey := func() string { return keyFingerprints(t, filepath.Join(dir, "authorized_keys"))[0] }

	rows := []cmRow{
		{"Alarms.Active", "lists org A's alarm", cmOrgAListed, func(ctx context.Context, who core.Actor) (string, error) {
			return listed(alarms.Active(ctx, who))
		}},
		{"Alarms.Recent", "lists org A's alarm", cmOrgAListed, func(ctx context.Context, who core.Actor) (string, error) {
			return listed(alarms.Recent(ctx, who, 100))
		}},
		{"Alarms.Acknowledge", "org A's alarm", cmOrgA, func(ctx context.Context, who core.Actor) (string, error) {
			return done(alarms.Acknowledge(ctx, who, alarmID))
		}},
		{"Clients.Clients", "lists org A's client", cmOrgAListed, func(ctx context.Context, who core.Actor) (string, error) {
			return listedClient(mqttClients.Clients(ctx, who))
		}},
		{"Clients.Retained", "lists org A's retained message", cmOrgAListed, func(ctx context.Context, who core.Actor) (string, error) {
			return listedRetained(mqttClients.Retained(ctx, who))
		}},
		{"Clients.Disconnect", "org A's client", cmOrgA, func(ctx context.Context, who core.Actor) (string, error) {
			return done(mqttClients.Disconnect(ctx, who, a.username+"/dev"))
		}},
		{"Clients.Disconnect", "the monitor (no org)", cmAdminOnly, func(ctx context.Context, who core.Actor) (string, error) {
			return done(mqttClients.Disconnect(ctx, who, "monitor/m"))
		}},
		{"Clients.DeleteSession", "org A's session", cmOrgA, func(ctx context.Context, who core.Actor) (string, error) {
			return done(mqttClients.DeleteSession(ctx, who, a.username+"/dev"))
		}},
		{"Clients.DeleteRetained", "org A's message", cmOrgA, func(ctx context.Context, who core.Actor) (string, error) {
			return done(mqttClients.DeleteRetained(ctx, who, a.topic("cfg")))
		}},
		{"Clients.DeleteRetained", "a topic outside org/", cmAdminOnly, func(ctx context.Context, who core.Actor) (string, error) {
			return done(mqttClients.DeleteRetained(ctx, who, "outside/cfg"))
		}},
		{"History.Recent", "org A's thing", cmOrgA, func(ctx context.Context, who core.Actor) (string, error) {
			_, err := hs.Recent(ctx, who, th.ID, history.KindSensor, time.Hour, 10)
			return cmOK, err
		}},
		{"History.Series", "org A's thing", cmOrgA, func(ctx context.Context, who core.Actor) (string, error) {
			_, err := hs.Series(ctx, who, th.ID, tui.SeriesQuery{Kind: history.KindSensor, From: time.Now().Add(-time.Hour), To: time.Now()})
			return cmOK, err
		}},
		{"Live.Subscribe", "org A's topics", cmOrgA, func(ctx context.Context, who core.Actor) (string, error) {
			return follow(ctx, who, a.topic("#"))
		}},
		{"Live.Subscribe", "every topic", cmAdminOnly, func(ctx context.Context, who core.Actor) (string, error) {
			return follow(ctx, who, "#")
		}},
		{"Live.Publish", "on org A's topic", cmOrgA, func(ctx context.Context, who core.Actor) (string, error) {
			return done(live.Publish(ctx, who, tui.LiveMessage{Topic: a.topic("cmthing/set"), Payload: []byte("on")}))
		}},
		{"Live.Publish", "outside every org", cmAdminOnly, func(ctx context.Context, who core.Actor) (string, error) {
			return done(live.Publish(ctx, who, tui.LiveMessage{Topic: "devices/cmthing", Payload: []byte("on")}))
		}},
		{"AuthorizedKeys.List", "", cmAdminOnly, func(ctx context.Context, who core.Actor) (string, error) {
			_, err := keys.List(ctx, who)
			return cmOK, err
		}},
		{"AuthorizedKeys.Remove", "a key", cmAdminOnly, func(ctx context.Context, who core.Actor) (string, error) {
			_, err := keys.Remove(ctx, who, nextKey())
			return cmOK, err
		}},
		// The monitor is the console's WebhookTester as it is; the admin
		// is told org A has no webhook to test.
		{"Monitor.TestWebhook", "org A's webhook", cmWant{string(core.CodeBadInput), cmForbidden, cmForbidden, cmForbidden, cmUnauth},
			func(ctx context.Context, who core.Actor) (string, error) {
				return done(mon.TestWebhook(ctx, who, a.org.ID))
			}},
		{"System.Backup", "", cmAdminOnly, func(ctx context.Context, who core.Actor) (string, error) {
			// A name of its own: the default one has only seconds.
			_, err := sys.Backup(ctx, who, fmt.Sprintf("matrix-%d.jsonl", fx.seq.Add(1)))
			return cmOK, err
		}},
		{"Backups.Export", "", cmAdminOnly, func(ctx context.Context, who core.Actor) (string, error) {
			return done(bk.Export(ctx, who, io.Discard))
		}},
		{"Backups.List", "", cmAdminOnly, func(ctx context.Context, who core.Actor) (string, error) {
			_, err := bk.List(ctx, who)
			return cmOK, err
		}},
		{"Backups.Open", "", cmAdminOnly, func(ctx context.Context, who core.Actor) (string, error) {
			rc, err := bk.Open(ctx, who, filepath.Base(backup))
			if rc != nil {
				rc.Close()
			}
			return cmOK, err
		}},
		{"Backups.PendingRestore", "", cmAdminOnly, func(ctx context.Context, who core.Actor) (string, error) {
			_, err := bk.PendingRestore(ctx, who)
			return cmOK, err
		}},
		{"Backups.CancelRestore", "", cmAdminOnly, func(ctx context.Context, who core.Actor) (string, error) {
			return scheduled(func() error { return bk.CancelRestore(ctx, who) })
		}},
		{"Backups.ApplyRestore", "", cmAdminOnlyNA, func(ctx context.Context, who core.Actor) (string, error) {
			return scheduled(func() error { return bk.ApplyRestore(ctx, who) })
		}},
		{"System.Logs", "", cmAdminOnly, func(ctx context.Context, who core.Actor) (string, error) {
			_, err := sys.Logs(ctx, who)
			return cmOK, err
		}},
		{"System.Restore", "", cmAdminOnly, func(ctx context.Context, who core.Actor) (string, error) {
			return done(sys.Restore(ctx, who, backup))
		}},
		{"System.RegenerateTLS", "", cmAdminOnlyNA, func(ctx context.Context, who core.Actor) (string, error) {
			return done(sys.RegenerateTLS(ctx, who))
		}},
		{"System.Reboot", "", cmAdminOnlyNA, func(ctx context.Context, who core.Actor) (string, error) {
			return done(sys.Reboot(ctx, who))
		}},
		{"System.PowerOff", "", cmAdminOnlyNA, func(ctx context.Context, who core.Actor) (string, error) {
			return done(sys.PowerOff(ctx, who))
		}},
		{"System.Updates", "", cmAdminOnlyNA, func(ctx context.Context, who core.Actor) (string, error) {
			_, err := sys.Updates(ctx, who)
			return done(err)
		}},
		{"System.FetchUpdate", "", cmAdminOnlyNA, func(ctx context.Context, who core.Actor) (string, error) {
			return done(sys.FetchUpdate(ctx, who, "https://updates.example/piot.bundle"))
		}},
		{"System.OSSettings", "", cmAdminOnlyNA, func(ctx context.Context, who core.Actor) (string, error) {
			_, err := sys.OSSettings(ctx, who)
			return cmOK, err
		}},
		{"System.SetOSSettings", "", cmAdminOnlyNA, func(ctx context.Context, who core.Actor) (string, error) {
			return done(sys.SetOSSettings(ctx, who, tui.OSSettings{Hostname: "piot"}))
		}},
	}

	// Every method of the backend that takes an actor has a row.
	covered := map[string]bool{}
	for _, r := range rows {
		covered[r.op] = true
	}
	actorType := reflect.TypeFor[core.Actor]()
	for _, v := range []any{alarms, hs, live, sys, mqttClients, bk, keys, NewTracker(), &Metrics{}, &LogRing{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumMethod() {
			m := typ.Method(i)
			takesActor := false
			for j := range m.Type.NumIn() {
				takesActor = takesActor || m.Type.In(j) == actorType
			}
			if name := typ.Elem().Name() + "." + m.Name; takesActor && !covered[name] {
				t.Errorf("%s takes an actor but has no row in the console's authorization matrix", name)
			}
		}
	}

	for _, r := range rows {
		t.Run(strings.TrimSpace(r.op+" "+r.what), func(t *testing.T) {
			for i, name := range cmActors {
				got, err := r.run(ctx, actors[name])
				switch {
				case errors.Is(err, tui.ErrUnsupported):
					got = cmUnsupported
				case err != nil:
					got = string(core.CodeOf(err))
				}
				if got != r.want[i] {
					t.Errorf("%s: %s (%v), want %s", name, got, err, r.want[i])
				}
			}
		})
	}
}
