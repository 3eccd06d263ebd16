package ingest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
)

// broker runs mochi in-process with the ingest hook on a loopback port.
func broker(t *testing.T, ing *Ingest) (*mqtt.Server, string) {
	t.Helper()
	s := mqtt.New(&mqtt.Options{InlineClient: true, Logger: quiet})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AddHook(ing.Hook(), nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "tcp", Address: "127.0.0.1:0"})
	if err := s.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, "tcp://" + l.Address()
}

func client(t *testing.T, addr, id string, opts func(*paho.ClientOptions)) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(addr).SetClientID(id).SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	if opts != nil {
		opts(o)
	}
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	return c
}

// Real clients over TCP: a QoS 1 publish is acknowledged only after its
// journal record is durable, and then lands in thing state and history.
func TestMQTTClientsEndToEnd(t *testing.T) {
	e := newEnv(t)
	ing := e.start(Config{}, nil)
	s := e.things()
	dev := e.thing(thingSpec{name: "dev1", typ: "device", update: core.ThingUpdate{AvailabilityTopic: ptr("available")}})
	srv, addr := broker(t, ing)
	start := time.Now().Add(-time.Second).Unix()

	c := client(t, addr, "sensor-T1", nil)
	for k := 0; k < 25; k++ {
		durable := ing.j.Durable()
		tok := c.Publish("org/acme/T1/value", 1, false, fmt.Sprint(k))
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		// PUBACK arrived: the record is on disk.
		if ing.j.Durable() <= durable {
			t.Fatalf("acknowledged before durable: durable %d, was %d", ing.j.Durable(), durable)
		}
	}
	c.Publish("org/acme/relay/state", 0, false, "ON").Wait()
	c.Publish("org/acme/relay/state", 1, false, "BOGUS").Wait()
	c.Disconnect(100)

	// In-process publishes by the appliance itself go through the hook too.
	if err := srv.Publish("org/acme/gps/battery", []byte("55"), false, 1); err != nil {
		t.Fatal(err)
	}

	// A device that dies leaves its will: availability drops.
	var conn net.Conn
	var mu sync.Mutex
	w := client(t, addr, "dev1", func(o *paho.ClientOptions) {
		o.SetWill("org/acme/dev1/available", "no", 1, false)
		o.SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			cn, err := net.Dial("tcp", u.Host)
			mu.Lock()
			conn = cn
			mu.Unlock()
			return cn, err
		})
	})
	if tok := w.Publish("org/acme/dev1/available", 1, false, "yes"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if !e.get(dev.ID).Available {
		eventually(t, func() bool { return e.get(dev.ID).Available })
	}
	mu.Lock()
	conn.Close()
	mu.Unlock()
	eventually(t, func() bool { return !e.get(dev.ID).Available })

	eventually(t, func() bool {
		return e.get(s.sensor.ID).Sensor.Value == "24" && e.get(s.sw.ID).Switch.State && e.get(s.tracker.ID).BatteryLevel == 55
	})
	if err := ing.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := e.readings(s.sensor.ID, history.KindSensor, start, time.Now().Unix()+1); len(r) != 25 {
		t.Fatalf("history has %d points", len(r))
	}
	if n := ing.Stats()[Key{RuleSwitch, IgnoredUnknownState}]; n != 1 {
		t.Fatalf("unknown switch state counted %d", n)
	}
}
