package broker

import (
	"strings"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"
)

// TestConnectRefusals: every way in without valid credentials gets the
// documented CONNACK code, in MQTT 5 and 3.1.1.
func TestConnectRefusals(t *testing.T) {
	b := startBroker(t, nil)
	a := newTenant(t, "auth")
	addr := b.addr(ListenerTCP)

	cases := []struct {
		name       string
		user, pass string
		noCreds    bool
		v5, v3     byte
	}{
		{"anonymous", "", "", true, 0x87, 5},
		{"wrong password", a.username, "wrong-password", false, 0x86, 4},
		{"unknown user", "nobody", a.password, false, 0x86, 4},
		{"plus in username", a.username + "+", a.password, false, 0x86, 4},
		{"hash in username", "#", a.password, false, 0x86, 4},
		{"slash in username", "org/" + a.username, a.password, false, 0x86, 4},
		{"NUL in username", a.username + "\x00", a.password, false, 0x86, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl, err := dial5(t, addr, c.user, c.pass, v5opts{noCreds: c.noCreds})
			if err == nil {
				t.Fatal("MQTT 5 connect accepted")
			}
			if cl.connack == nil || cl.connack.ReasonCode != c.v5 {
				t.Fatalf("MQTT 5 CONNACK %+v, want %#x", cl.connack, c.v5)
			}
			_, _, err = dial3(t, "tcp://"+addr, c.user, c.pass, func(o *paho3.ClientOptions) {
				if c.noCreds {
					o.SetUsername("").SetPassword("")
				}
			})
			if err == nil {
				t.Fatal("MQTT 3.1.1 connect accepted")
			}
			want := map[byte]string{4: "bad user name or password", 5: "not Authorized"}[c.v3]
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("MQTT 3.1.1 refusal %q, want %q", err, want)
			}
		})
	}

	h, p := hostPort(t, addr)
	out, err := mosquitto(t, "mosquitto_pub", "-h", h, "-p", p, "-t", a.topic("x"), "-m", "anon")
	if err == nil || !strings.Contains(out, "not authorised") {
		t.Fatalf("mosquitto_pub anonymous: err=%v out=%q", err, out)
	}
	out, err = mosquitto(t, "mosquitto_pub", "-h", h, "-p", p, "-u", a.username, "-P", "nope", "-t", a.topic("x"), "-m", "bad")
	if err == nil || !strings.Contains(out, "bad user name or password") {
		t.Fatalf("mosquitto_pub bad password: err=%v out=%q", err, out)
	}
	if out, err := mosquitto(t, "mosquitto_pub", "-h", h, "-p", p, "-u", a.username, "-P", a.password, "-t", a.topic("x"), "-m", "ok"); err != nil {
		t.Fatalf("mosquitto_pub with valid credentials: %v %q", err, out)
	}
}

// TestStoreOutageDenies: with the store unhealthy no client may connect
// and connected clients may do nothing, until it recovers.
func TestStoreOutageDenies(t *testing.T) {
	b := startBroker(t, nil)
	a := newTenant(t, "outage")
	addr := b.addr(ListenerTCP)

	c, err := dial5(t, addr, a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	b.healthy.Store(false)
	if rc := c.publish(t, a.topic("x"), "during outage", false); rc != 0x87 {
		t.Errorf("publish during outage: %#x", rc)
	}
	if rc := c.subscribe(t, a.topic("#")); rc != 0x87 {
		t.Errorf("subscribe during outage: %#x", rc)
	}
	c2, err := dial5(t, addr, a.username, a.password, v5opts{})
	if err == nil || c2.connack.ReasonCode != 0x88 {
		t.Fatalf("connect during outage: %v %+v", err, c2.connack)
	}
	if _, _, err := dial3(t, "tcp://"+addr, a.username, a.password, nil); err == nil || !strings.Contains(strings.ToLower(err.Error()), "unavailable") {
		t.Fatalf("3.1.1 connect during outage: %v", err)
	}

	b.healthy.Store(true)
	if rc := c.subscribe(t, a.topic("#")); rc != 1 {
		t.Errorf("subscribe after outage: %#x", rc)
	}
	if rc := c.publish(t, a.topic("x"), "after", false); rc != 0 {
		t.Errorf("publish after outage: %#x", rc)
	}
	c.expect(t, a.topic("x"), "after")
}

// TestMaxClients: one client too many gets "server busy" / "server
// unavailable" and the others are unaffected.
func TestMaxClients(t *testing.T) {
	b := startBroker(t, func(c *Config) { c.MaxClients = 2 })
	a := newTenant(t, "maxcl")
	addr := b.addr(ListenerTCP)
	c1, err := dial5(t, addr, a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial5(t, addr, a.username, a.password, v5opts{}); err != nil {
		t.Fatal(err)
	}
	c3, err := dial5(t, addr, a.username, a.password, v5opts{})
	if err == nil || c3.connack.ReasonCode != 0x89 {
		t.Fatalf("third MQTT 5 client: %v %+v", err, c3.connack)
	}
	if _, _, err := dial3(t, "tcp://"+addr, a.username, a.password, nil); err == nil || !strings.Contains(strings.ToLower(err.Error()), "unavailable") {
		t.Fatalf("third 3.1.1 client: %v", err)
	}
	c1.subscribe(t, a.topic("#"))
	c1.publish(t, a.topic("still"), "here", false)
	c1.expect(t, a.topic("still"), "here")
	if got := b.Stats().AuthResults[AuthServerBusy]; got != 2 {
		t.Errorf("server_busy counted %d, want 2", got)
	}
}

// TestPolicyCounters: the policy counts auth outcomes, ACL decisions and
// publishes by QoS, with every key present from the start.
func TestPolicyCounters(t *testing.T) {
	b := startBroker(t, nil)
	a := newTenant(t, "counts")
	addr := b.addr(ListenerTCP)

	st := b.Stats()
	if len(st.AuthResults) != len(AuthResultNames) || len(st.ACLResults) != 4 {
		t.Fatalf("keys missing at start: %v %v", st.AuthResults, st.ACLResults)
	}
	for k, n := range st.AuthResults {
		if n != 0 {
			t.Fatalf("auth %s = %d at start", k, n)
		}
	}

	if _, err := dial5(t, addr, a.username, "wrong-password", v5opts{}); err == nil {
		t.Fatal("bad password accepted")
	}
	if _, err := dial5(t, addr, "", "", v5opts{noCreds: true}); err == nil {
		t.Fatal("anonymous accepted")
	}
	b.healthy.Store(false)
	if _, err := dial5(t, addr, a.username, a.password, v5opts{}); err == nil {
		t.Fatal("accepted during a store outage")
	}
	b.healthy.Store(true)
	c, err := dial5(t, addr, a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	if rc := c.subscribe(t, "org/someone-else/#"); rc < 0x80 {
		t.Fatalf("foreign subscribe granted: %#x", rc)
	}
	if rc := c.subscribe(t, a.topic("#")); rc >= 0x80 {
		t.Fatalf("own subscribe refused: %#x", rc)
	}
	if rc := c.publish(t, a.topic("q1"), "one", false); rc != 0 {
		t.Fatalf("publish: %#x", rc)
	}
	c.expect(t, a.topic("q1"), "one")

	st = b.Stats()
	for k, want := range map[string]int64{AuthOK: 1, AuthBadCredentials: 1, AuthNotAuthorized: 1, AuthUnavailable: 1, AuthServerBusy: 0} {
		if got := st.AuthResults[k]; got != want {
			t.Errorf("auth %s = %d, want %d", k, got, want)
		}
	}
	if got := st.ACLResults[[2]string{ACLRead, ACLDeny}]; got != 1 {
		t.Errorf("acl read deny = %d, want 1", got)
	}
	if got := st.ACLResults[[2]string{ACLRead, ACLAllow}]; got < 2 { // subscribe + delivery
		t.Errorf("acl read allow = %d, want >= 2", got)
	}
	if got := st.ACLResults[[2]string{ACLWrite, ACLAllow}]; got != 1 {
		t.Errorf("acl write allow = %d, want 1", got)
	}
	if got := st.ACLResults[[2]string{ACLWrite, ACLDeny}]; got != 0 {
		t.Errorf("acl write deny = %d, want 0", got)
	}
	if st.PublishesReceived != [3]int64{0, 1, 0} {
		t.Errorf("publishes by QoS %v, want [0 1 0]", st.PublishesReceived)
	}
}

// TestKeepaliveLimit: MQTT 5 clients are told the maximum, 3.1.1 clients
// asking for more are refused (as mosquitto does).
func TestKeepaliveLimit(t *testing.T) {
	b := startBroker(t, func(c *Config) { c.MaxKeepalive = 60 })
	a := newTenant(t, "ka")
	addr := b.addr(ListenerTCP)
	for _, o := range []v5opts{{keepalive: 120}, {zeroKeepalive: true}} {
		c, err := dial5(t, addr, a.username, a.password, o)
		if err != nil {
			t.Fatal(err)
		}
		p := c.connack.Properties
		if p == nil || p.ServerKeepAlive == nil || *p.ServerKeepAlive != 60 {
			t.Fatalf("server keepalive %+v", p)
		}
		if p.MaximumPacketSize == nil || *p.MaximumPacketSize != DefaultMaxPacketSize {
			t.Fatalf("maximum packet size not announced: %+v", p)
		}
	}
	c, err := dial5(t, addr, a.username, a.password, v5opts{keepalive: 30})
	if err != nil {
		t.Fatal(err)
	}
	if p := c.connack.Properties; p != nil && p.ServerKeepAlive != nil {
		t.Fatalf("server keepalive sent for an acceptable value: %d", *p.ServerKeepAlive)
	}
	_, _, err = dial3(t, "tcp://"+addr, a.username, a.password, func(o *paho3.ClientOptions) { o.SetKeepAlive(120 * time.Second) })
	if err == nil || !strings.Contains(err.Error(), "identifier rejected") {
		t.Fatalf("3.1.1 keepalive over the limit: %v", err)
	}
	if _, _, err := dial3(t, "tcp://"+addr, a.username, a.password, func(o *paho3.ClientOptions) { o.SetKeepAlive(30 * time.Second) }); err != nil {
		t.Fatal(err)
	}
	// 3.1.1 with no keepalive, as device firmwares send it: accepted
	// (issue 11), refused only when strict.
	noKeepalive := func(o *paho3.ClientOptions) { o.SetKeepAlive(0) }
	if _, _, err := dial3(t, "tcp://"+addr, a.username, a.password, noKeepalive); err != nil {
		t.Fatalf("3.1.1 keepalive 0: %v", err)
	}
	strict := startBroker(t, func(c *Config) { c.MaxKeepalive = 60; c.StrictKeepalive = true })
	_, _, err = dial3(t, "tcp://"+strict.addr(ListenerTCP), a.username, a.password, noKeepalive)
	if err == nil || !strings.Contains(err.Error(), "identifier rejected") {
		t.Fatalf("3.1.1 keepalive 0 with strict keepalive: %v", err)
	}
}

// TestMonitorUser: the monitor identity reads $SYS and nothing else.
func TestMonitorUser(t *testing.T) {
	b := startBroker(t, func(c *Config) { c.MonitorPassword = "monitor-secret" })
	a := newTenant(t, "mon")
	addr := b.addr(ListenerTCP)
	if _, err := dial5(t, addr, MonitorUsername, "wrong", v5opts{}); err == nil {
		t.Fatal("monitor with a wrong password connected")
	}
	m, err := dial5(t, addr, MonitorUsername, "monitor-secret", v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	if rc := m.subscribe(t, "$SYS/broker/version"); rc != 1 {
		t.Fatalf("monitor $SYS: %#x", rc)
	}
	m.expect(t, "$SYS/broker/version", "2.7.9")
	for _, f := range []string{a.topic("#"), "#", "org/#"} {
		if rc := m.subscribe(t, f); rc != 0x87 {
			t.Errorf("monitor subscribe %q: %#x", f, rc)
		}
	}
	if rc := m.publish(t, a.topic("x"), "no", false); rc != 0x87 {
		t.Errorf("monitor publish: %#x", rc)
	}
	h, p := hostPort(t, addr)
	out, err := mosquitto(t, "mosquitto_sub", "-h", h, "-p", p, "-u", MonitorUsername, "-P", "monitor-secret",
		"-t", "$SYS/broker/version", "-C", "1", "-W", "5")
	if err != nil || strings.TrimSpace(out) != "2.7.9" {
		t.Fatalf("mosquitto_sub $SYS as monitor: %v %q", err, out)
	}

	// Without a monitor password the name is just an unknown user.
	b2 := startBroker(t, nil)
	if _, err := dial5(t, b2.addr(ListenerTCP), MonitorUsername, "", v5opts{}); err == nil {
		t.Fatal("monitor connected with monitoring disabled")
	}
}

// TestClientIDsAreNamespaced: two orgs using the same client ID do not
// take over each other's session, and nobody can take over the broker's
// internal client.
func TestClientIDsAreNamespaced(t *testing.T) {
	b := startBroker(t, nil)
	a, o := newTenant(t, "nsa"), newTenant(t, "nsb")
	addr := b.addr(ListenerTCP)
	ca, err := dial5(t, addr, a.username, a.password, v5opts{clientID: "sensor-1"})
	if err != nil {
		t.Fatal(err)
	}
	ca.subscribe(t, a.topic("#"))
	cb, err := dial5(t, addr, o.username, o.password, v5opts{clientID: "sensor-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial5(t, addr, o.username, o.password, v5opts{clientID: "inline"}); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-ca.disconnect:
		t.Fatalf("A taken over by B: %#x", d.ReasonCode)
	case <-time.After(200 * time.Millisecond):
	}
	if err := b.Publish(t.Context(), a.topic("cmd"), []byte("on")); err != nil {
		t.Fatal(err)
	}
	ca.expect(t, a.topic("cmd"), "on")
	cb.subscribe(t, o.topic("#"))
	cb.publish(t, o.topic("x"), "b", false)
	cb.expect(t, o.topic("x"), "b")
}

// Too many failed logins from one address: further attempts are refused
// without a password check, except credentials verified before.
func TestFailedLoginsAreLimited(t *testing.T) {
	b := startBroker(t, func(c *Config) { c.FailedLogins = 3 })
	addr := b.addr(ListenerTCP)
	a, fresh := newTenant(t, "flla"), newTenant(t, "fllb")
	c, err := dial5(t, addr, a.username, a.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	c.close()
	for i := 0; i < 3; i++ {
		if _, err := dial5(t, addr, a.username, "wrong", v5opts{}); err == nil {
			t.Fatal("wrong password accepted")
		}
	}
	if _, err := dial5(t, addr, fresh.username, fresh.password, v5opts{}); err == nil {
		t.Fatal("an unverified login got through while the address is blocked")
	}
	c, err = dial5(t, addr, a.username, a.password, v5opts{})
	if err != nil {
		t.Fatalf("credentials verified before were refused: %v", err)
	}
	c.close()
	if len(policyCounters{}.auth) != len(AuthResultNames) {
		t.Fatal("an auth result has no counter")
	}
	st := b.Stats().AuthResults
	if st[AuthBadCredentials] != 3 || st[AuthRateLimited] != 1 {
		t.Fatalf("auth results %v", st)
	}
}
