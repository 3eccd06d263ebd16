package core

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/piot-appliance/piot/services/store"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
)

// Thing state is stored in pages, not in the things' documents: FerretDB
// runs every update statement in a transaction of its own that reads,
// decodes, rewrites and commits the document (about 1 ms of CPU a thing,
// BenchmarkThingSetMany1000), so a flush of 10 000 changed things took 10 s
// of CPU. Each thing belongs to one of statePages pages by its id; a flush
// replaces the pages holding a changed thing with the state of all their
// things, one statement a page. The page is authoritative: at start it
// overrides the state fields of the things' documents, which only data of
// format 1 (before pages) or a thing never flushed has.
const statePages = 64

// pageOf is the page of a thing: ObjectIDs end in a counter, so their last
// bytes spread things evenly.
func pageOf(id ID) int { return int(binary.BigEndian.Uint32(id[8:12]) % statePages) }

func pageID(p int) string { return "p" + strconv.Itoa(p) }

// stateEntry is one thing's state in a page.
type stateEntry struct {
	ID              ID      `bson:"i"`
	Available       bool    `bson:"a"`
	LastSeen        int64   `bson:"ls"`
	Telemetry       string  `bson:"t"`
	Voltage         float64 `bson:"v"`
	LocLat          float64 `bson:"la"`
	LocLng          float64 `bson:"ln"`
	LocSat          int64   `bson:"s"`
	LocTs           int64   `bson:"lt"`
	BatteryLevel    int64   `bson:"b"`
	AlarmActive     bool    `bson:"aa"`
	AlarmActivated  int64   `bson:"at"`
	SensorValue     string  `bson:"sv"`
	SensorUnit      string  `bson:"su"`
	MeasurementLast int64   `bson:"sm"`
	SwitchState     bool    `bson:"ss"`
}

func stateOf(t *Thing) stateEntry {
	return stateEntry{
		ID: t.ID, Available: t.Available, LastSeen: t.LastSeen, Telemetry: t.Telemetry, Voltage: t.Voltage,
		LocLat: t.LocLat, LocLng: t.LocLng, LocSat: t.LocSat, LocTs: t.LocTs, BatteryLevel: t.BatteryLevel,
		AlarmActive: t.AlarmActive, AlarmActivated: t.AlarmActivated, SensorValue: t.Sensor.Value,
		SensorUnit: t.Sensor.Unit, MeasurementLast: t.Sensor.MeasurementLast, SwitchState: t.Switch.State,
	}
}

func (e *stateEntry) applyTo(t *Thing) {
	t.Available, t.LastSeen, t.Telemetry, t.Voltage = e.Available, e.LastSeen, e.Telemetry, e.Voltage
	t.LocLat, t.LocLng, t.LocSat, t.LocTs = e.LocLat, e.LocLng, e.LocSat, e.LocTs
	t.BatteryLevel, t.AlarmActive, t.AlarmActivated = e.BatteryLevel, e.AlarmActive, e.AlarmActivated
	t.Sensor.Value, t.Sensor.Unit, t.Sensor.MeasurementLast, t.Switch.State = e.SensorValue, e.SensorUnit, e.MeasurementLast, e.SwitchState
}

// pageDoc is a stored page: its entries as one BSON binary, so that
// FerretDB stores and decodes one value instead of a schema entry per
// field of every thing.
type pageDoc struct {
	ID string           `bson:"_id"`
	B  primitive.Binary `bson:"b"`
}

type pageBody struct {
	E []stateEntry `bson:"e"`
}

// pagesLocked is the state of every thing of the wanted pages, by page; a
// wanted page whose things were all deleted is there empty. Callers hold
// c.mu.
func (c *Core) pagesLocked(want [statePages]bool) map[int][]stateEntry {
	pages := map[int][]stateEntry{}
	for p, w := range want {
		if w {
			pages[p] = nil
		}
	}
	for id, t := range c.things {
		if p := pageOf(id); want[p] {
			pages[p] = append(pages[p], stateOf(t))
		}
	}
	return pages
}

// writePages replaces the given pages. Callers do not hold c.mu.
func (c *Core) writePages(ctx context.Context, pages map[int][]stateEntry) error {
	var models []mongo.WriteModel
	for p, es := range pages {
		raw, err := bson.Marshal(pageBody{E: es})
		if err != nil {
			return fmt.Errorf("core: encode state page: %w", err)
		}
		models = append(models, mongo.NewReplaceOneModel().
			SetFilter(bson.D{{Key: "_id", Value: pageID(p)}}).
			SetReplacement(pageDoc{ID: pageID(p), B: primitive.Binary{Data: raw}}).
			SetUpsert(true))
	}
	_, err := store.BulkWrite(ctx, c.st.Database().Collection(store.CollThingState), models, false)
	return err
}

// writeStateOf writes the page of one thing now and syncs it: a change of
// state made through the API (a switch, an alarm) is durable before the
// answer, as every change through core is, and the page, which overrides
// the thing's document at start, must not hold the state from before.
func (c *Core) writeStateOf(ctx context.Context, id ID) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	var want [statePages]bool
	want[pageOf(id)] = true
	c.mu.RLock()
	pages := c.pagesLocked(want)
	c.mu.RUnlock()
	if err := c.writePages(ctx, pages); err != nil {
		return internal("error while writing thing state", err)
	}
	return storeErr(c.st.Sync(ctx), "thing state")
}

// loadPages applies the stored pages to the things loaded from their
// documents (in New, before anything reads them).
func (c *Core) loadPages(ctx context.Context) error {
	cur, err := c.st.Database().Collection(store.CollThingState).Find(ctx, bson.D{})
	if err != nil {
		return err
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var d pageDoc
		if err := cur.Decode(&d); err != nil {
			return fmt.Errorf("decode state page: %w", err)
		}
		var body pageBody
		if err := bson.Unmarshal(d.B.Data, &body); err != nil {
			return fmt.Errorf("decode state page %s: %w", d.ID, err)
		}
		for i := range body.E {
			// Things deleted since the page was written are skipped; the
			// next write of the page leaves them out.
			if t, ok := c.things[body.E[i].ID]; ok {
				body.E[i].applyTo(t)
			}
		}
	}
	return cur.Err()
}
