package ingest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/core/coretest"
	"github.com/piot-appliance/piot/services/history"
	"github.com/piot-appliance/piot/services/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// env is a real store, core, history and ingest, as the appliance wires
// them.
type env struct {
	t     testing.TB
	dir   string
	st    *store.Store
	c     *core.Core
	h     *history.Store
	ing   *Ingest
	admin core.Actor
	org   core.Org
}

func ptr[T any](v T) *T { return &v }

func newEnv(t testing.TB) *env {
	t.Helper()
	fx := coretest.New(t)
	e := &env{t: t, dir: fx.Dir, st: fx.Store, admin: fx.Admin, org: fx.Org}
	// The ingest's core and history load what the fixture stored, as after
	// a restart.
	e.openCore()
	return e
}

// openCore (re)loads core and history from the store, as a restart does.
func (e *env) openCore() {
	e.t.Helper()
	c, err := core.New(context.Background(), e.st, core.Config{BcryptCost: 4, Logger: quiet})
	if err != nil {
		e.t.Fatal(err)
	}
	e.c = c
	h, err := history.New(e.st, history.Config{Logger: quiet})
	if err != nil {
		e.t.Fatal(err)
	}
	e.h = h
}

// start creates and starts an ingest on the env's data directory.
func (e *env) start(cfg Config, before func(*Ingest)) *Ingest {
	e.t.Helper()
	cfg.DataDir = e.dir
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 50 * time.Millisecond
	}
	cfg.Logger = quiet
	ing, err := New(cfg, Deps{Core: e.c, History: e.h})
	if err != nil {
		e.t.Fatal(err)
	}
	if before != nil {
		before(ing)
	}
	if err := ing.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.ing = ing
	e.t.Cleanup(func() { _ = ing.Stop(context.Background()) })
	return ing
}

// crash stops an ingest the way kill -9 would leave things: whatever is
// not stored yet stays unstored, no checkpoint is written.
func (i *Ingest) crash() {
	i.lifeMu.Lock()
	defer i.lifeMu.Unlock()
	i.stopped = true
	i.running.Store(false)
	i.cancel()
	_ = i.j.Close()
	close(i.applyCh)
	i.applierWG.Wait()
	close(i.flushStop)
	i.flushWG.Wait()
	i.qmu.Lock()
	i.qclosed = true
	i.queue = nil
	i.qcond.Broadcast()
	i.qmu.Unlock()
	i.writerWG.Wait()
	i.unsub()
}

type thingSpec struct {
	name, typ string
	update    core.ThingUpdate
	sensor    *core.SensorUpdate
	sw        *core.SwitchUpdate
	disabled  bool
	noOrg     bool
}

// thing creates a thing, configures it and waits until the ingest index
// knows its settings.
func (e *env) thing(s thingSpec) core.Thing {
	e.t.Helper()
	ctx := context.Background()
	th, err := e.c.CreateThing(ctx, e.admin, s.name, s.typ)
	if err != nil {
		e.t.Fatal(err)
	}
	u := s.update
	u.ID = th.ID
	if !s.noOrg {
		u.SetOrg, u.OrgID = true, e.org.ID
	}
	u.Enabled = ptr(!s.disabled)
	if th, err = e.c.UpdateThing(ctx, e.admin, u); err != nil {
		e.t.Fatal(err)
	}
	if s.sensor != nil {
		su := *s.sensor
		su.ID = th.ID
		if th, err = e.c.UpdateThingSensor(ctx, e.admin, su); err != nil {
			e.t.Fatal(err)
		}
	}
	if s.sw != nil {
		su := *s.sw
		su.ID = th.ID
		if th, err = e.c.UpdateThingSwitch(ctx, e.admin, su); err != nil {
			e.t.Fatal(err)
		}
	}
	e.synced(th)
	return th
}

// synced waits until the ingest index holds the thing's current settings
// (core delivers change events asynchronously).
func (e *env) synced(want core.Thing) {
	e.t.Helper()
	// The index follows core inline: no waiting.
	if !e.indexed(want) {
		e.t.Fatalf("the ingest index does not have %s's settings right after the change", want.Name)
	}
}

func (e *env) indexed(want core.Thing) bool {
	if e.ing == nil {
		return true
	}
	x := e.ing.idx
	x.mu.RLock()
	defer x.mu.RUnlock()
	keys, ok := x.things[want.ID]
	if want.OrgID.IsZero() {
		return !ok
	}
	if !ok || len(keys) == 0 {
		return len(thingTopics(&want)) == 0
	}
	for _, m := range x.topics[keys[0].org][keys[0].topic] {
		if m.thing.ID == want.ID {
			return settings(*m.thing) == settings(want)
		}
	}
	return false
}

// settings blanks a thing's state, leaving what users configure.
func settings(t core.Thing) core.Thing {
	t.Available, t.LastSeen, t.Telemetry = false, 0, ""
	t.LocLat, t.LocLng, t.LocSat, t.LocTs = 0, 0, 0, 0
	t.BatteryLevel, t.AlarmActive, t.AlarmActivated = 0, false, 0
	t.Sensor.Value, t.Sensor.Unit, t.Sensor.MeasurementLast = "", "", 0
	t.Switch.State = false
	return t
}

func eventually(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) get(id core.ID) core.Thing {
	e.t.Helper()
	th, err := e.c.Thing(e.admin, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return th
}

// stored reads a thing as the store has it: as a core started on it now
// would load it.
func (e *env) stored(id core.ID) core.Thing {
	e.t.Helper()
	c, err := core.New(context.Background(), e.st, core.Config{BcryptCost: 4, Logger: quiet})
	if err != nil {
		e.t.Fatal(err)
	}
	th, err := c.Thing(core.System(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return th
}

func (e *env) readings(id core.ID, kind string, from, to int64) []history.Reading {
	e.t.Helper()
	r, err := e.h.Query(context.Background(), id, kind, from, to, 0, "", 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}
