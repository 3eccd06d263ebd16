package monitor

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/piot-appliance/piot/services/core"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
)

// CollAlarms holds one document per alarm, active or cleared.
const CollAlarms = "alarms"

// Retention of cleared alarms: older ones are deleted, and at most
// maxCleared are kept, so the start-up load (one Find, since FerretDB on
// SQLite only indexes `_id`) stays bounded.
const (
	clearedRetention = 30 * 24 * time.Hour
	maxCleared       = 10000
)

// Alarm is one period during which a thing was not available.
type Alarm struct {
	ID        string  `bson:"_id"` // ObjectID hex
	ThingID   core.ID `bson:"thing_id"`
	OrgID     core.ID `bson:"org_id"`
	ThingName string  `bson:"thing_name"`
	OrgName   string  `bson:"org_name"`
	// LastSeen is the thing's last_seen when the alarm was raised (0:
	// never seen); a later last_seen means it reported again.
	LastSeen int64 `bson:"last_seen"`
	// Interval is the thing's last_seen_interval (seconds) when raised.
	Interval       int64      `bson:"interval"`
	RaisedAt       time.Time  `bson:"raised_at"`
	ClearedAt      *time.Time `bson:"cleared_at,omitempty"`
	AcknowledgedAt *time.Time `bson:"acknowledged_at,omitempty"`
	// AcknowledgedBy is the user who acknowledged it (their e-mail is
	// kept too, as it was then, for display after the user is gone).
	AcknowledgedBy      core.ID `bson:"acknowledged_by,omitempty"`
	AcknowledgedByEmail string  `bson:"acknowledged_by_email,omitempty"`
	// ClearReason is empty when the thing reported again, else why the
	// alarm was closed without recovery (thing deleted, disabled, ...).
	ClearReason string `bson:"clear_reason,omitempty"`
}

// Active reports whether the alarm is still raised.
func (a Alarm) Active() bool { return a.ClearedAt == nil }

func (m *Monitor) coll() *mongo.Collection { return m.st.Database().Collection(CollAlarms) }

// loadAlarms reads every stored alarm (one Find) and prunes old cleared
// ones.
func (m *Monitor) loadAlarms(ctx context.Context) error {
	if err := m.st.EnsureIDIndex(ctx, CollAlarms); err != nil {
		return fmt.Errorf("monitor: alarms collection: %w", err)
	}
	cur, err := m.coll().Find(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("monitor: load alarms: %w", err)
	}
	var all []Alarm
	if err := cur.All(ctx, &all); err != nil {
		return fmt.Errorf("monitor: load alarms: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range all {
		a := &all[i]
		m.alarms[a.ID] = a
		if a.Active() {
			if old := m.active[a.ThingID]; old != nil && old.RaisedAt.After(a.RaisedAt) {
				continue // duplicates cannot be written, but keep the newest if any
			}
			m.active[a.ThingID] = a
		}
	}
	return nil
}

// pruneAlarms deletes cleared alarms beyond the retention.
func (m *Monitor) pruneAlarms(ctx context.Context) {
	now := m.now()
	m.mu.Lock()
	var cleared []*Alarm
	for _, a := range m.alarms {
		if !a.Active() {
			cleared = append(cleared, a)
		}
	}
	sort.Slice(cleared, func(i, j int) bool { return cleared[i].ClearedAt.After(*cleared[j].ClearedAt) })
	var drop []string
	for i, a := range cleared {
		if i >= maxCleared || now.Sub(*a.ClearedAt) > clearedRetention {
			drop = append(drop, a.ID)
		}
	}
	m.mu.Unlock()
	for _, id := range drop {
		if _, err := m.coll().DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
			m.log.Warn("prune alarm", "alarm", id, "err", err)
			continue
		}
		m.mu.Lock()
		delete(m.alarms, id)
		m.mu.Unlock()
	}
	if len(drop) > 0 {
		m.log.Info("pruned cleared alarms", "count", len(drop))
	}
}

// insertAlarm and setAlarmFields write an alarm and make it durable
// (store.Sync): an alarm, its clearing and its acknowledgement are rare
// and must survive a power cut.
func (m *Monitor) insertAlarm(ctx context.Context, a *Alarm) error {
	if _, err := m.coll().InsertOne(ctx, a); err != nil {
		return err
	}
	return m.st.Sync(ctx)
}

func (m *Monitor) setAlarmFields(ctx context.Context, id string, set bson.D) error {
	if _, err := m.coll().UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: set}}); err != nil {
		return err
	}
	return m.st.Sync(ctx)
}

// Alarms lists alarms, newest first: active ones (active true), cleared
// ones (false) or all (nil). It does no authorization: in-process
// services only; the API uses AlarmsFor.
func (m *Monitor) Alarms(active *bool) []Alarm {
	m.mu.Lock()
	out := make([]Alarm, 0, len(m.alarms))
	for _, a := range m.alarms {
		if active == nil || *active == a.Active() {
			out = append(out, *a)
		}
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].RaisedAt.Equal(out[j].RaisedAt) {
			return out[i].RaisedAt.After(out[j].RaisedAt)
		}
		return out[i].ID > out[j].ID
	})
	return out
}

// AlarmsFor lists the alarms the caller may see: all for admins, those
// of their orgs (the org the thing belonged to when raised) for members.
func (m *Monitor) AlarmsFor(a core.Actor, active *bool) ([]Alarm, error) {
	scope, err := m.core.AlarmScope(a)
	if err != nil {
		return nil, err
	}
	all := m.Alarms(active)
	out := all[:0]
	for _, al := range all {
		if scope.Includes(al.OrgID) {
			out = append(out, al)
		}
	}
	return out, nil
}

// Alarm returns one alarm to an admin or a member of its thing's org.
func (m *Monitor) Alarm(a core.Actor, id string) (Alarm, error) {
	al, err := m.lookup(id)
	if err != nil {
		return Alarm{}, err
	}
	if err := m.authorize(a, al); err != nil {
		return Alarm{}, err
	}
	return al, nil
}

func (m *Monitor) lookup(id string) (Alarm, error) {
	if _, err := primitive.ObjectIDFromHex(id); err != nil {
		return Alarm{}, core.NewError(core.CodeBadInput, "Invalid alarm id")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	al, ok := m.alarms[id]
	if !ok {
		return Alarm{}, core.NewError(core.CodeNotFound, "Alarm does not exist")
	}
	return *al, nil
}

// authorize lets admins and members of the alarm's thing's org act on
// it: core decides.
func (m *Monitor) authorize(a core.Actor, al Alarm) error {
	return m.core.MayHandleAlarm(a, al.ThingID)
}

// Acknowledge records that somebody has seen the alarm (admins and
// members of the thing's org). Acknowledging twice keeps the first
// acknowledgement; cleared alarms may be acknowledged too.
func (m *Monitor) Acknowledge(ctx context.Context, a core.Actor, id string) (Alarm, error) {
	al, err := m.lookup(id)
	if err != nil {
		return Alarm{}, err
	}
	if err := m.authorize(a, al); err != nil {
		return Alarm{}, err
	}
	if al.AcknowledgedAt != nil {
		return al, nil
	}
	at := m.now().UTC().Truncate(time.Millisecond)
	err = m.setAlarmFields(ctx, id, bson.D{
		{Key: "acknowledged_at", Value: at},
		{Key: "acknowledged_by", Value: a.UserID},
		{Key: "acknowledged_by_email", Value: a.Email},
	})
	if err != nil {
		return Alarm{}, &core.Error{Code: core.CodeInternal, Msg: "Cannot save the acknowledgement", Err: err}
	}
	m.mu.Lock()
	p, ok := m.alarms[id]
	if !ok {
		m.mu.Unlock()
		return Alarm{}, core.NewError(core.CodeNotFound, "Alarm does not exist")
	}
	if p.AcknowledgedAt == nil {
		p.AcknowledgedAt, p.AcknowledgedBy, p.AcknowledgedByEmail = &at, a.UserID, a.Email
	}
	out := *p
	m.mu.Unlock()
	m.core.Record(ctx, a, "acknowledgeAlarm", "alarm of thing "+out.ThingName)
	return out, nil
}
