package broker

import (
	"net"
	"testing"
	"time"
)

// TestWebSocketSameACL: a Go client over ws:// authenticates and is held
// to the same ACL as over TCP.
func TestWebSocketSameACL(t *testing.T) {
	b := startBroker(t, func(c *Config) { c.WSAddr = "127.0.0.1:0" })
	a, o := newTenant(t, "wsa"), newTenant(t, "wsb")

	cb, err := dial5(t, b.addr(ListenerTCP), o.username, o.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	cb.subscribe(t, o.topic("#"))

	url := "ws://" + b.addr(ListenerWS) + "/mqtt"
	if _, _, err := dial3(t, url, a.username, "wrong", nil); err == nil {
		t.Fatal("bad password accepted over WebSocket")
	}
	c, msgs, err := dial3(t, url, a.username, a.password, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rc := subscribe3(t, c, o.topic("#")); rc != 0x80 {
		t.Errorf("subscribe to B over ws: %#x", rc)
	}
	if rc := subscribe3(t, c, "#"); rc != 0x80 {
		t.Errorf("subscribe # over ws: %#x", rc)
	}
	if rc := subscribe3(t, c, a.topic("#")); rc != 1 {
		t.Fatalf("subscribe own over ws: %#x", rc)
	}
	if err := publish3(t, c, o.topic("x"), 0, false, "leak"); err != nil {
		t.Fatal(err)
	}
	if err := publish3(t, c, a.topic("x"), 1, false, "over ws"); err != nil {
		t.Fatal(err)
	}
	expect3(t, msgs, a.topic("x"), "over ws")
	cb.expectNone(t, 200*time.Millisecond)
}

// TestSilentConnectionIsDropped: a connection that never sends CONNECT is
// closed after connectTimeout instead of holding a goroutine forever; here
// it is checked that shutdown does not wait for it either.
func TestSilentConnectionIsDropped(t *testing.T) {
	b := startBroker(t, nil)
	conn, err := net.Dial("tcp", b.addr(ListenerTCP))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	b.stop(t)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("stop waited %v for a silent connection", d)
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("silent connection still open after stop")
	}
}
