package graph

import (
	"errors"
	"time"

	"github.com/piot-appliance/piot/services/api/graph/model"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
)

// Conversions between the generated GraphQL models and core's types. They
// translate shapes only; every rule is core's.

func ptr[T any](v T) *T { return &v }

// ptrs turns a core list result into the pointer slice gqlgen expects.
func ptrs[T any](items []T, err error) ([]*T, error) {
	if err != nil {
		return nil, err
	}
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out, nil
}

func thingResult(t core.Thing, err error) (*core.Thing, error) {
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func parseIDs(a, b string) (core.ID, core.ID, error) {
	x, err := core.ParseID(a)
	if err != nil {
		return x, x, err
	}
	y, err := core.ParseID(b)
	return x, y, err
}

// thingUpdate converts ThingUpdate. orgId: null, "" and "null" (what the
// original manager sends for "no organization") unassign; absent leaves
// the org alone.
func thingUpdate(in model.ThingUpdate) (core.ThingUpdate, error) {
	id, err := core.ParseID(in.ID)
	if err != nil {
		return core.ThingUpdate{}, err
	}
	u := core.ThingUpdate{
		ID:                    id,
		PiotID:                in.PiotID,
		Name:                  in.Name,
		Type:                  in.Type,
		Description:           in.Description,
		Alias:                 in.Alias,
		Enabled:               in.Enabled,
		LastSeenInterval:      in.LastSeenInterval,
		Voltage:               in.Voltage,
		AvailabilityTopic:     in.AvailabilityTopic,
		TelemetryTopic:        in.TelemetryTopic,
		StoreInfluxDB:         in.StoreInfluxdb,
		StoreMySQLDB:          in.StoreMysqldb,
		StoreMySQLDBInterval:  in.StoreMysqldbInterval,
		LocLat:                in.LocationLat,
		LocLng:                in.LocationLng,
		LocTracking:           in.LocationTracking,
		LocMQTTTopic:          in.LocationMqttTopic,
		LocMQTTLatValue:       in.LocationMqttLatValue,
		LocMQTTLngValue:       in.LocationMqttLngValue,
		LocMQTTSatValue:       in.LocationMqttSatValue,
		LocMQTTTsValue:        in.LocationMqttTsValue,
		BatteryLevelTracking:  in.BatteryLevelTracking,
		BatteryMQTTTopic:      in.BatteryMqttTopic,
		BatteryMQTTLevelValue: in.BatteryMqttLevelValue,
	}
	if org, set := in.OrgID.ValueOK(); set {
		u.SetOrg = true
		if org != nil && *org != "" && *org != "null" {
			if u.OrgID, err = core.ParseID(*org); err != nil {
				return core.ThingUpdate{}, err
			}
		}
	}
	return u, nil
}

// thingQuery converts the arguments of things and thingsConnection.
func thingQuery(sort *model.ThingSort, filter *model.ThingFilter, all *bool, first *int64, after *string) core.ThingQuery {
	var q core.ThingQuery
	q.All = all != nil && *all
	if filter != nil {
		if filter.Name != nil {
			q.Name = *filter.Name
		}
		if filter.NameContains != nil {
			q.NameContains = *filter.NameContains
		}
	}
	if sort != nil {
		q.SortSet = true
		q.SortBy = string(sort.Field)
		q.Desc = sort.Order == model.SortOrderDesc
	}
	if first != nil {
		// Clamp before narrowing to int (32 bits on some boards) so an
		// out-of-range value stays out of range and core rejects it.
		n := *first
		if n > core.MaxPageSize {
			n = core.MaxPageSize + 1
		} else if n < 0 {
			n = -1
		}
		q.First = ptr(int(n))
	}
	if after != nil {
		q.After = *after
	}
	return q
}

// connection builds a ThingConnection; every edge carries the cursor that
// resumes right after it.
func connection(page core.ThingPage) *model.ThingConnection {
	c := &model.ThingConnection{
		TotalCount: int64(page.TotalCount),
		Edges:      make([]*model.ThingEdge, len(page.Items)),
		PageInfo:   &model.PageInfo{HasNextPage: page.HasNextPage},
	}
	for i := range page.Items {
		c.Edges[i] = &model.ThingEdge{Node: &page.Items[i], Cursor: page.Cursors[i]}
	}
	if len(page.Items) > 0 {
		c.PageInfo.EndCursor = ptr(page.EndCursor)
	}
	return c
}

// MaxReadings bounds (and is the default of) readings(first:).
const MaxReadings = history.MaxReadings

// readingsQuery checks the readings arguments with the history's own
// rules (history.NewRequest, which the web manager's history page uses
// too); the kind defaults to what the thing's type reports.
func readingsQuery(t core.Thing, from, to, step *int64, fn *model.ReadingFn, first *int64, kind *string) (history.Request, error) {
	var f *history.Fn
	if fn != nil {
		v := history.Fn(*fn)
		f = &v
	}
	q, err := history.NewRequest(t.Type, kind, from, to, step, f, first)
	var bad *history.RequestError
	if errors.As(err, &bad) {
		return q, core.NewError(core.CodeBadInput, bad.Msg)
	}
	return q, err
}

func unixOrNil(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	u := t.Unix()
	return &u
}
