package ingest

import (
	"fmt"
	"net"
	"sync"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/piot-appliance/piot/services/durable"
)

// heldConn is a connection that keeps the holds the hook gives it, as the
// broker's connections do, so that its publisher does not wait for each
// record.
type heldConn struct {
	net.Conn
	mu    sync.Mutex
	holds []durable.Hold
}

func (c *heldConn) HoldWrites(h durable.Hold) {
	c.mu.Lock()
	c.holds = append(c.holds, h)
	c.mu.Unlock()
}

func (c *heldConn) wait(t *testing.T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.holds {
		if err := h.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	c.holds = nil
}

// The hook names each QoS 1 publisher's connection to the journal, so
// that commits shared by many publishers are spaced and a lone
// publisher's are not (journal.Options.BusyCommitInterval).
func TestCommitSpacingCountsPublishers(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{BusyCommitInterval: DefaultBusyCommitInterval}, nil)
	e.things()
	publish := func(clients, each int) {
		var wg sync.WaitGroup
		for c := range clients {
			conn := &heldConn{}
			cl := &mqtt.Client{ID: fmt.Sprint("pub", c), Net: mqtt.ClientConnection{Conn: conn}}
			wg.Go(func() {
				for k := range each {
					pk := packets.Packet{TopicName: "org/acme/T1/value", Payload: fmt.Append(nil, k), FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}}
					if _, err := ing.Hook().OnPublish(cl, pk); err != nil {
						t.Error(err)
						return
					}
				}
				conn.wait(t)
			})
		}
		wg.Wait()
	}

	// Rounds back to back: each round's first commit follows a commit
	// of many records.
	for range 5 {
		publish(1, 500)
	}
	if st := ing.j.Stats(); st.Spaced != 0 {
		t.Fatalf("one publisher's commits were spaced: %+v", st)
	}
	// Whether a commit gathers enough publishers depends on the
	// scheduler; a few rounds make it sure.
	for round := 0; ing.j.Stats().Spaced == 0; round++ {
		if round == 20 {
			t.Fatalf("no commit of 16 publishers was spaced: %+v", ing.j.Stats())
		}
		publish(16, 100)
	}
}
