package broker

import (
	"net"
	"strings"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"
)

// subscribePacket is a raw SUBSCRIBE of one filter at qos.
func subscribePacket(filter string, qos byte) []byte {
	body := []byte{0, 1, 0, byte(len(filter))}
	body = append(body, filter...)
	body = append(body, qos)
	return append([]byte{0x82, byte(len(body))}, body...)
}

// A subscriber that stops reading never delays another client's PUBACK
// (issue 11, DoS 3): its outbound queue is bounded, and when the queue
// overflows it is disconnected, counted and logged.
func TestSlowSubscriberDoesNotStallPublishers(t *testing.T) {
	for _, qos := range []byte{0, 1} {
		b := startBroker(t, nil)
		a := newTenant(t, "slow")
		// A persistent session (clean session off) with client ID "m".
		sub, err := net.Dial("tcp", b.addr(ListenerTCP))
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		_ = sub.(*net.TCPConn).SetReadBuffer(4096)
		_ = sub.SetDeadline(time.Now().Add(5 * time.Second))
		connect := connectPacket(4, a.username, a.password)
		connect[9] &^= 0x02
		if _, err := sub.Write(connect); err != nil {
			t.Fatal(err)
		}
		if ca := readRawPacket(t, sub); ca[0] != 0x20 || ca[3] != 0 {
			t.Fatalf("CONNACK % x", ca)
		}
		if _, err := sub.Write(subscribePacket("org/"+a.name+"/#", qos)); err != nil {
			t.Fatal(err)
		}
		if sa := readRawPacket(t, sub); sa[0] != 0x90 || sa[4] != qos {
			t.Fatalf("SUBACK % x", sa)
		}
		// From here on the subscriber reads nothing.

		pub, _, err := dial3(t, "tcp://"+b.addr(ListenerTCP), a.username, a.password, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Enough to fill the socket buffers behind the subscriber: at QoS 1
		// before its 100 unacknowledged deliveries are in flight, at QoS 0
		// before the outbound queue's bytes or packets are full.
		size, n := 128<<10, 300
		if qos == 0 {
			size, n = 8<<10, 3000
		}
		payload := strings.Repeat("x", size)
		for i := 0; i < n; i++ {
			if err := publish3(t, pub, a.topic("t1/value"), 1, false, payload); err != nil {
				t.Fatalf("subscription QoS %d: publish %d: %v", qos, i, err)
			}
		}
		if qos == 0 {
			// QoS 0 deliveries beyond half the queue are dropped and
			// counted; the client stays until its keepalive runs out.
			if st := b.Stats(); st.MessagesDropped == 0 || st.SlowClients != 0 {
				t.Errorf("QoS 0: %d dropped, %d slow clients", st.MessagesDropped, st.SlowClients)
			}
			continue
		}
		eventually(t, 10*time.Second, "the slow subscriber disconnected", func() bool { return b.Stats().SlowClients == 1 })
		if !strings.Contains(b.logs(), "mqtt client too slow") {
			t.Error("the disconnect was not logged")
		}
		// Its QoS 1 messages were kept for the session, up to the
		// inflight limit, and arrive when it comes back.
		_, msgs, err := dial3(t, "tcp://"+b.addr(ListenerTCP), a.username, a.password, func(o *paho3.ClientOptions) {
			o.SetClientID("m").SetCleanSession(false)
		})
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for done := false; !done; {
			select {
			case <-msgs:
				got++
			case <-time.After(2 * time.Second):
				done = true
			}
		}
		if got != DefaultMaxInflight {
			t.Errorf("the session got %d messages back, want %d (the inflight limit)", got, DefaultMaxInflight)
		}
	}
}
