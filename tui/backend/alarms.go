package backend

import (
	"context"
	"fmt"
	"sort"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/monitor"
	"github.com/piot-appliance/piot/tui"
)

// Alarms shows the monitor's alarms in the console; the monitor authorizes
// by actor (admins all, members their orgs').
type Alarms struct{ m *monitor.Monitor }

// NewAlarms adapts the monitor.
func NewAlarms(m *monitor.Monitor) *Alarms { return &Alarms{m: m} }

func view(al monitor.Alarm) tui.Alarm {
	out := tui.Alarm{
		ID: al.ID, ThingID: al.ThingID, Thing: al.ThingName, Org: al.OrgName,
		Kind: "last-seen", Severity: "warning", Raised: al.RaisedAt, AckedBy: al.AcknowledgedByEmail,
		Message: fmt.Sprintf("not seen for more than %ds", al.Interval),
	}
	if al.ClearedAt != nil {
		out.Cleared = *al.ClearedAt
	}
	if al.AcknowledgedAt != nil {
		out.AckedAt = *al.AcknowledgedAt
	}
	if al.ClearReason != "" {
		out.Message += " (closed: " + al.ClearReason + ")"
	}
	return out
}

// Active lists alarms not yet cleared.
func (x *Alarms) Active(_ context.Context, a core.Actor) ([]tui.Alarm, error) {
	yes := true
	als, err := x.m.AlarmsFor(a, &yes)
	if err != nil {
		return nil, err
	}
	out := make([]tui.Alarm, len(als))
	for i, al := range als {
		out[i] = view(al)
	}
	return out, nil
}

// Recent lists the newest alarms, active or not.
func (x *Alarms) Recent(_ context.Context, a core.Actor, limit int) ([]tui.Alarm, error) {
	als, err := x.m.AlarmsFor(a, nil)
	if err != nil {
		return nil, err
	}
	sort.Slice(als, func(i, j int) bool { return als[i].RaisedAt.After(als[j].RaisedAt) })
	if limit > 0 && len(als) > limit {
		als = als[:limit]
	}
	out := make([]tui.Alarm, len(als))
	for i, al := range als {
		out[i] = view(al)
	}
	return out, nil
}

// Acknowledge records that the actor has seen the alarm.
func (x *Alarms) Acknowledge(ctx context.Context, a core.Actor, id string) error {
	_, err := x.m.Acknowledge(ctx, a, id)
	return err
}
