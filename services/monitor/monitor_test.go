package monitor

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// slack absorbs a loaded machine: transitions are asserted, not speed.
const slack = 3 * time.Second

// TestAlarmRaiseAndClear is the whole cycle with a real SMTP server and
// a webhook receiver: one notification of each kind per transition.
func TestAlarmRaiseAndClear(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	smtpd := startSMTP(t, nil)
	hook := newHookReceiver(t, "hook-secret", 0)
	url, secret := hook.srv.URL, "hook-secret"
	if _, err := e.c.SetOrgNotifications(e.ctx, e.admin, e.org, &url, &secret); err != nil {
		t.Fatal(err)
	}
	e.user(t, "member@x.test", e.org, true)
	e.user(t, "quiet@x.test", e.org, false)
	other, err := e.c.CreateOrg(e.ctx, e.admin, "other", "")
	if err != nil {
		t.Fatal(err)
	}
	e.user(t, "outsider@x.test", other.ID, true)

	quiet := e.thing(t, "sensor1", e.org, true, 1)
	e.report(quiet)
	// never alarm: disabled, unassigned, no interval, and one that
	// keeps reporting
	disabled := e.thing(t, "disabled", e.org, false, 1)
	unassigned := e.thing(t, "unassigned", core.ID{}, true, 1)
	noInterval := e.thing(t, "nointerval", e.org, true, 0)
	chatty := e.thing(t, "chatty", e.org, true, 2)
	e.report(chatty)
	stopChat := make(chan struct{})
	var chatWG sync.WaitGroup
	chatWG.Add(1)
	go func() {
		defer chatWG.Done()
		tk := time.NewTicker(400 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stopChat:
				return
			case <-tk.C:
				e.report(chatty)
			}
		}
	}()
	defer func() { close(stopChat); chatWG.Wait() }()

	m := e.monitor(t, e.c, Config{SMTP: smtpd.config(), WebhookTimeout: 5 * time.Second})
	start := time.Now()

	waitFor(t, 1*time.Second+slack, "alarm raised", func() bool { return e.state(t, quiet).AlarmActive })
	raisedAfter := time.Since(start)
	th := e.state(t, quiet)
	if th.Available || th.AlarmActivated == 0 {
		t.Fatalf("after raise: available=%v activated=%d", th.Available, th.AlarmActivated)
	}
	if raisedAfter < 900*time.Millisecond {
		t.Fatalf("alarm raised after %s, before the 1 s interval passed", raisedAfter)
	}
	waitFor(t, slack, "alarm mail", func() bool { return smtpd.count(t, "[piot][alarm]") == 1 })
	waitFor(t, slack, "alarm webhook", func() bool { return hook.count(EventRaised) == 1 })

	mails := smtpd.mails(t)
	if got, want := mails[0].subject(), "[piot][alarm] acme/sensor1 not available"; got != want {
		t.Fatalf("subject %q, want %q", got, want)
	}
	to := slices.Clone(mails[0].To)
	slices.Sort(to)
	if want := []string{"admin@x.test", "member@x.test"}; !slices.Equal(to, want) {
		t.Fatalf("recipients %v, want %v", to, want)
	}
	if strings.Contains(mails[0].Data, "member@x.test") {
		t.Fatal("recipients disclosed in the message")
	}
	call := hook.received()[0]
	al := m.Alarms(ptr(true))
	if len(al) != 1 || al[0].ThingID != quiet {
		t.Fatalf("active alarms %+v", al)
	}
	if p := call.Payload; p.Org != "acme" || p.Thing != "sensor1" || p.ThingID != quiet.Hex() || p.AlarmID != al[0].ID || p.At == "" {
		t.Fatalf("webhook payload %+v", p)
	}
	if call.Delivery != al[0].ID+":"+EventRaised {
		t.Fatalf("delivery header %q", call.Delivery)
	}

	// it stays down: no more mails while a few intervals pass
	time.Sleep(3 * time.Second)
	if n := len(smtpd.mails(t)); n != 1 {
		t.Fatalf("%d mails while down, want 1", n)
	}
	if n := len(hook.received()); n != 1 {
		t.Fatalf("%d webhooks while down, want 1", n)
	}

	e.report(quiet)
	waitFor(t, slack, "alarm cleared", func() bool { return !e.state(t, quiet).AlarmActive })
	th = e.state(t, quiet)
	if !th.Available {
		t.Fatal("not available after recovery")
	}
	waitFor(t, slack, "recovery mail", func() bool { return smtpd.count(t, "[piot][ok] acme/sensor1 available again") == 1 })
	waitFor(t, slack, "recovery webhook", func() bool { return hook.count(EventCleared) == 1 })
	if n := len(smtpd.mails(t)); n != 2 {
		t.Fatalf("%d mails, want 2", n)
	}
	if len(m.Alarms(ptr(true))) != 0 {
		t.Fatal("alarm still active")
	}
	cl := m.Alarms(ptr(false))
	if len(cl) != 1 || cl[0].ClearedAt == nil || cl[0].ClearReason != "" {
		t.Fatalf("cleared alarms %+v", cl)
	}

	for _, id := range []core.ID{disabled, unassigned, noInterval, chatty} {
		if th := e.state(t, id); th.AlarmActive {
			t.Errorf("%s alarmed", th.Name)
		}
	}
	s := m.Stats()
	if s.Raised != 1 || s.Cleared != 1 || s.EmailsSent != 2 || s.WebhooksSent != 2 || s.EmailsFailed+s.WebhooksFailed != 0 {
		t.Fatalf("stats %+v", s)
	}
	if hook.badSig != 0 {
		t.Fatalf("%d webhook calls with a bad signature", hook.badSig)
	}
}

// TestSMTPStartTLSAuth delivers through a relay that requires STARTTLS
// and AUTH, trusting the relay's certificate through a test CA.
func TestSMTPStartTLSAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cert := newTestCert(t)
	smtpd := startSMTP(t, cert)
	cfg := smtpd.config()
	cfg.StartTLS, cfg.Username, cfg.Password, cfg.TLSConfig = true, "piot", "s3cret pass", cert.tlsConfig()
	id := e.thing(t, "tls1", e.org, true, 1)
	e.report(id)
	m := e.monitor(t, e.c, Config{SMTP: cfg, WebhookTimeout: 5 * time.Second})
	waitFor(t, 1*time.Second+2*slack, "alarm mail over TLS", func() bool { return len(smtpd.mails(t)) == 1 })
	got := smtpd.mails(t)[0]
	if !got.TLS || got.Auth != "piot" || got.From != "piot@appliance.test" {
		t.Fatalf("mail tls=%v auth=%q from=%q", got.TLS, got.Auth, got.From)
	}
	if s := m.Stats(); s.EmailsSent != 1 || s.EmailsFailed != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestSMTPStartTLSRequired refuses to send in the clear when STARTTLS is
// required and the relay does not offer it.
func TestSMTPStartTLSRequired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	smtpd := startSMTP(t, nil)
	cfg := smtpd.config()
	cfg.StartTLS = true
	id := e.thing(t, "plain1", e.org, true, 1)
	e.report(id)
	m := e.monitor(t, e.c, Config{SMTP: cfg})
	waitFor(t, 1*time.Second+2*slack, "mail failure counted", func() bool { return m.Stats().EmailsFailed == 1 })
	if n := len(smtpd.mails(t)); n != 0 {
		t.Fatalf("%d mails sent without TLS", n)
	}
	if s := m.Stats(); s.EmailsRetried != 0 {
		t.Fatalf("a missing STARTTLS was retried: %+v", s)
	}
}

// TestWebhookRetry: the receiver fails first, the delivery is retried and
// accepted exactly once.
func TestWebhookRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hook := newHookReceiver(t, "", 2)
	url := hook.srv.URL
	if _, err := e.c.SetOrgNotifications(e.ctx, e.admin, e.org, &url, nil); err != nil {
		t.Fatal(err)
	}
	id := e.thing(t, "retry1", e.org, true, 1)
	e.report(id)
	m := e.monitor(t, e.c, Config{})
	m.notifier.hookTry.base = 200 * time.Millisecond
	waitFor(t, 1*time.Second+3*slack, "webhook delivered after retries", func() bool { return hook.count(EventRaised) == 1 })
	time.Sleep(time.Second)
	calls := hook.received()
	if len(calls) != 1 {
		t.Fatalf("%d deliveries accepted, want 1", len(calls))
	}
	if s := m.Stats(); s.WebhooksRetried != 2 || s.WebhooksSent != 1 || s.WebhooksFailed != 0 {
		t.Fatalf("stats %+v", s)
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if hook.requests != 3 {
		t.Fatalf("%d requests, want 3", hook.requests)
	}
}

// TestRestartKeepsAlarm: a new monitor (and a new core, as after a
// reboot) on the same store neither re-raises nor forgets the alarm.
func TestRestartKeepsAlarm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hook := newHookReceiver(t, "", 0)
	url := hook.srv.URL
	if _, err := e.c.SetOrgNotifications(e.ctx, e.admin, e.org, &url, nil); err != nil {
		t.Fatal(err)
	}
	id := e.thing(t, "restart1", e.org, true, 1)
	e.report(id)
	m1, err := New(Config{Logger: e.log}, Deps{Core: e.c, Store: e.st})
	if err != nil {
		t.Fatal(err)
	}
	if err := m1.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 1*time.Second+slack, "raised", func() bool { return hook.count(EventRaised) == 1 })
	alarmID := m1.Alarms(ptr(true))[0].ID
	if err := m1.Stop(e.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.FlushState(e.ctx); err != nil {
		t.Fatal(err)
	}
	c2, err := core.New(e.ctx, e.st, core.Config{BcryptCost: 4, Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	m2 := e.monitor(t, c2, Config{})
	time.Sleep(3 * time.Second)
	if n := len(hook.received()); n != 1 {
		t.Fatalf("%d notifications after restart, want 1", n)
	}
	act := m2.Alarms(ptr(true))
	if len(act) != 1 || act[0].ID != alarmID {
		t.Fatalf("active alarms after restart %+v", act)
	}
	if th, _ := c2.Thing(core.System(), id); !th.AlarmActive || th.Available {
		t.Fatalf("thing state after restart: alarm=%v available=%v", th.AlarmActive, th.Available)
	}
	c2.UpdateThingState(id, func(t *core.Thing) bool { t.LastSeen = time.Now().Unix(); return true })
	waitFor(t, slack, "cleared after restart", func() bool { return hook.count(EventCleared) == 1 })
	if th, _ := c2.Thing(core.System(), id); th.AlarmActive || !th.Available {
		t.Fatalf("thing state after recovery: alarm=%v available=%v", th.AlarmActive, th.Available)
	}
	if n := len(hook.received()); n != 2 {
		t.Fatalf("%d notifications, want 2", n)
	}
	if c := hook.received()[1]; c.Payload.AlarmID != alarmID {
		t.Fatalf("cleared %s, want %s", c.Payload.AlarmID, alarmID)
	}
}

// TestAcknowledgeAndUnmonitor covers who may acknowledge, that the
// acknowledgement is stored, and that disabling an alarmed thing closes
// the alarm without a recovery notification.
func TestAcknowledgeAndUnmonitor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hook := newHookReceiver(t, "", 0)
	url := hook.srv.URL
	if _, err := e.c.SetOrgNotifications(e.ctx, e.admin, e.org, &url, nil); err != nil {
		t.Fatal(err)
	}
	other, err := e.c.CreateOrg(e.ctx, e.admin, "other", "")
	if err != nil {
		t.Fatal(err)
	}
	member := e.user(t, "member@x.test", e.org, false)
	outsider := e.user(t, "outsider@x.test", other.ID, false)
	id := e.thing(t, "ack1", e.org, true, 1)
	m := e.monitor(t, e.c, Config{})
	// never seen: counted from when monitoring began
	waitFor(t, 1*time.Second+slack, "raised", func() bool { return len(m.Alarms(ptr(true))) == 1 })
	al := m.Alarms(ptr(true))[0]
	if al.LastSeen != 0 {
		t.Fatalf("last seen %d", al.LastSeen)
	}

	if _, err := m.Acknowledge(e.ctx, outsider, al.ID); core.CodeOf(err) != core.CodeForbidden {
		t.Fatalf("outsider: %v", err)
	}
	if _, err := m.Acknowledge(e.ctx, core.Anonymous(), al.ID); core.CodeOf(err) != core.CodeUnauthenticated {
		t.Fatalf("anonymous: %v", err)
	}
	if _, err := m.Acknowledge(e.ctx, member, "nothex"); core.CodeOf(err) != core.CodeBadInput {
		t.Fatalf("bad id: %v", err)
	}
	if _, err := m.Acknowledge(e.ctx, member, "0123456789abcdef01234567"); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("unknown id: %v", err)
	}
	if l, _ := m.AlarmsFor(outsider, nil); len(l) != 0 {
		t.Fatalf("outsider sees %d alarms", len(l))
	}
	if l, _ := m.AlarmsFor(member, nil); len(l) != 1 {
		t.Fatalf("member sees %d alarms", len(l))
	}
	got, err := m.Acknowledge(e.ctx, member, al.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.AcknowledgedAt == nil || got.AcknowledgedBy != member.UserID || got.AcknowledgedByEmail != "member@x.test" {
		t.Fatalf("acknowledged %+v", got)
	}
	again, err := m.Acknowledge(e.ctx, e.admin, al.ID)
	if err != nil || again.AcknowledgedBy != member.UserID {
		t.Fatalf("second acknowledgement: %+v %v", again, err)
	}

	// stored: a fresh load sees it
	m2, err := New(Config{Logger: e.log}, Deps{Core: e.c, Store: e.st})
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.loadAlarms(e.ctx); err != nil {
		t.Fatal(err)
	}
	if l := m2.Alarms(ptr(true)); len(l) != 1 || l[0].AcknowledgedAt == nil || l[0].AcknowledgedBy != member.UserID {
		t.Fatalf("reloaded %+v", l)
	}

	no := false
	if _, err := e.c.UpdateThing(e.ctx, e.admin, core.ThingUpdate{ID: id, Enabled: &no}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, slack, "closed on disable", func() bool { return len(m.Alarms(ptr(true))) == 0 })
	if th := e.state(t, id); th.AlarmActive {
		t.Fatal("alarm state kept on a disabled thing")
	}
	if c := m.Alarms(ptr(false)); len(c) != 1 || c[0].ClearReason == "" {
		t.Fatalf("closed alarm %+v", c)
	}
	time.Sleep(500 * time.Millisecond)
	if n := hook.count(EventCleared); n != 0 {
		t.Fatalf("%d recovery notifications for a disabled thing", n)
	}
}

func TestStopIsPrompt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.monitor(t, e.c, Config{})
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatal("second stop:", err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestMovedThing: an alarm does not follow a thing into another org; the
// new org gets its own alarm after an interval of silence there.
func TestMovedThing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hookA, hookB := newHookReceiver(t, "", 0), newHookReceiver(t, "", 0)
	other, err := e.c.CreateOrg(e.ctx, e.admin, "other", "")
	if err != nil {
		t.Fatal(err)
	}
	for org, url := range map[core.ID]string{e.org: hookA.srv.URL, other.ID: hookB.srv.URL} {
		if _, err := e.c.SetOrgNotifications(e.ctx, e.admin, org, &url, nil); err != nil {
			t.Fatal(err)
		}
	}
	id := e.thing(t, "mover", e.org, true, 1)
	m := e.monitor(t, e.c, Config{})
	waitFor(t, 1*time.Second+slack, "raised in the first org", func() bool { return hookA.count(EventRaised) == 1 })
	first := m.Alarms(ptr(true))[0].ID
	if _, err := e.c.UpdateThing(e.ctx, e.admin, core.ThingUpdate{ID: id, SetOrg: true, OrgID: other.ID}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 1*time.Second+slack, "raised in the second org", func() bool { return hookB.count(EventRaised) == 1 })
	act := m.Alarms(ptr(true))
	if len(act) != 1 || act[0].ID == first || act[0].OrgID != other.ID || act[0].OrgName != "other" {
		t.Fatalf("active %+v", act)
	}
	if hookA.count(EventCleared) != 0 || len(hookA.received()) != 1 {
		t.Fatalf("first org got %+v", hookA.received())
	}
}
