package devsim

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/adapter"
	"github.com/piot-appliance/piot/services/adapter/vdgps"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/core/coretest"
)

// The tests in this file send simulated packets to the real adapters over
// loopback HTTP, backed by the embedded store, and read what the adapters
// publish.

type publication struct{ topic, payload string }

type publications struct {
	mu   sync.Mutex
	msgs []publication
}

func (p *publications) publish(ctx context.Context, msgs []adapter.Message) error {
	for _, m := range msgs {
		if err := p.one(ctx, m.Topic, m.Payload, m.At); err != nil {
			return err
		}
	}
	return nil
}

func (p *publications) one(_ context.Context, topic string, payload []byte, _ time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, publication{topic, string(payload)})
	return nil
}

// payloads returns, in publication order, the payloads published to topic.
func (p *publications) payloads(topic string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, m := range p.msgs {
		if m.topic == topic {
			out = append(out, m.payload)
		}
	}
	return out
}

type appliance struct {
	t     *testing.T
	core  *core.Core
	admin core.Actor
	org   core.Org
	pubs  *publications
	url   string
}

// newAppliance serves both adapters like the appliance does: PIOT at
// /adapter (with aesKey, "" for plaintext) and VD GPS at /adapter/vdgps.
func newAppliance(t *testing.T, aesKey string) *appliance {
	t.Helper()
	ce := coretest.New(t)
	c, admin, org := ce.Core, ce.Admin, ce.Org
	a := &appliance{t: t, core: c, admin: admin, org: org, pubs: &publications{}}
	// A short interval: the simulator's pacing, not the limiter, is under
	// test here.
	ad, err := adapter.New(adapter.Config{AESKey: aesKey, MinInterval: time.Millisecond, Logger: quiet},
		adapter.Deps{Core: c, Publish: adapter.PublisherFunc(a.pubs.publish)})
	if err != nil {
		t.Fatal(err)
	}
	vd, err := vdgps.New(vdgps.Config{Logger: quiet}, vdgps.Deps{Core: c, Publish: adapter.PublisherFunc(a.pubs.publish)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/adapter", ad.Handler())
	mux.Handle("/adapter/vdgps", vd)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	a.url = srv.URL
	return a
}

// enable assigns the registered thing name to the org and enables it.
func (a *appliance) enable(name string) {
	a.t.Helper()
	th, ok := a.core.ThingByName(name)
	if !ok {
		a.t.Fatalf("thing %s was not registered", name)
	}
	on := true
	if _, err := a.core.UpdateThing(context.Background(), a.admin,
		core.ThingUpdate{ID: th.ID, Enabled: &on, SetOrg: true, OrgID: a.org.ID}); err != nil {
		a.t.Fatal(err)
	}
}

// simulate runs the simulator against the appliance and returns the result
// and the packet log's statuses by device.
func (a *appliance) simulate(cfg Config) (Result, map[string][]string) {
	a.t.Helper()
	var log bytes.Buffer
	cfg.URL, cfg.Log = a.url, &log
	res := run(a.t, cfg)
	statuses := map[string][]string{}
	for line := range strings.Lines(log.String()) {
		f := strings.Fields(line)
		statuses[f[0]] = append(statuses[f[0]], f[3])
	}
	return res, statuses
}

func TestRoundTripPIOT(t *testing.T) {
	for _, key := range []string{"", testKey} {
		t.Run(map[string]string{"": "plain", testKey: "encrypted"}[key], func(t *testing.T) {
			a := newAppliance(t, key)
			const devices, count = 3, 4
			// First contact registers the devices and sensors, unassigned:
			// accepted (202) but not published.
			res, statuses := a.simulate(Config{Devices: devices, Count: 1, Rate: 50, AESKey: key})
			if res.OK != devices || res.Rejected != 0 {
				t.Fatalf("registration run %+v", res)
			}
			for i := 1; i <= devices; i++ {
				dev := DeviceName(DefaultPrefix, i)
				if !slices.Equal(statuses[dev], []string{"202"}) {
					t.Fatalf("%s statuses %v", dev, statuses[dev])
				}
				a.enable(dev)
				a.enable(SensorName(dev))
				sensor, _ := a.core.ThingByName(SensorName(dev))
				device, _ := a.core.ThingByName(dev)
				if sensor.ParentID != device.ID {
					t.Fatalf("%s is not the parent of %s", dev, sensor.Name)
				}
			}

			res, statuses = a.simulate(Config{Devices: devices, Count: count, Rate: 50, AESKey: key})
			if res.OK != devices*count || res.Rejected != 0 {
				t.Fatalf("run %+v", res)
			}
			want := []string{"1", "2", "3", "4"}
			for i := 1; i <= devices; i++ {
				dev := DeviceName(DefaultPrefix, i)
				if !slices.Equal(statuses[dev], []string{"200", "200", "200", "200"}) {
					t.Errorf("%s statuses %v", dev, statuses[dev])
				}
				topic := "org/acme/" + SensorName(dev) + "/value"
				if got := a.pubs.payloads(topic); !slices.Equal(got, want) {
					t.Errorf("%s: %v, want %v", topic, got, want)
				}
			}
		})
	}
}

func TestRoundTripVDGPS(t *testing.T) {
	a := newAppliance(t, "")
	start := time.Date(2026, 2, 28, 23, 59, 58, 0, time.UTC)
	cfg := Config{Devices: 2, Count: 1, Rate: 50, VDGPS: true, Prefix: "trk", Start: start, Step: time.Second}
	if res, _ := a.simulate(cfg); res.OK != 2 {
		t.Fatalf("registration run %+v", res)
	}
	for i := 1; i <= 2; i++ {
		a.enable(vdgps.NamePrefix + DeviceName("trk", i))
	}
	cfg.Count = 5
	res, _ := a.simulate(cfg)
	if res.OK != 10 || res.Rejected != 0 {
		t.Fatalf("run %+v", res)
	}
	for i := 1; i <= 2; i++ {
		topic := "org/acme/" + vdgps.NamePrefix + DeviceName("trk", i) + "/location"
		got := a.pubs.payloads(topic)
		if len(got) != 5 {
			t.Fatalf("%s: %v", topic, got)
		}
		for k, payload := range got {
			var loc struct {
				TS       int64
				Lat, Lng float64
				Sat      int
			}
			if err := json.Unmarshal([]byte(payload), &loc); err != nil {
				t.Fatal(err)
			}
			seq, ok := FixSeq(loc.Lat, loc.Lng)
			// Crosses midnight into 1 March: the date packing is exercised.
			wantTS := start.Add(time.Duration(k) * time.Second).Unix()
			if !ok || seq != k+1 || loc.TS != wantTS {
				t.Errorf("%s fix %d: %s (seq %d, want %d; ts want %d)", topic, k, payload, seq, k+1, wantTS)
			}
		}
	}
}
