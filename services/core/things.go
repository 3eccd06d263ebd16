package core

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/bson/primitive"
)

// ThingUpdate changes a thing; nil fields stay as they are. SetOrg with a
// zero OrgID unassigns the thing.
type ThingUpdate struct {
	ID          ID
	PiotID      *string
	Name        *string
	Type        *string
	Description *string
	Alias       *string
	SetOrg      bool
	OrgID       ID
	// SetParent with a zero ParentID detaches the thing from its parent.
	SetParent             bool
	ParentID              ID
	Enabled               *bool
	LastSeenInterval      *int64
	Voltage               *float64
	AvailabilityTopic     *string
	TelemetryTopic        *string
	StoreInfluxDB         *bool
	StoreMySQLDB          *bool
	StoreMySQLDBInterval  *int64
	LocLat                *float64
	LocLng                *float64
	LocTracking           *bool
	LocMQTTTopic          *string
	LocMQTTLatValue       *string
	LocMQTTLngValue       *string
	LocMQTTSatValue       *string
	LocMQTTTsValue        *string
	BatteryLevelTracking  *bool
	BatteryMQTTTopic      *string
	BatteryMQTTLevelValue *string
}

// SensorUpdate changes a thing's sensor settings.
type SensorUpdate struct {
	ID               ID
	Class            *string
	Unit             *string
	MeasurementTopic *string
	MeasurementValue *string
}

// SwitchUpdate changes a thing's switch settings.
type SwitchUpdate struct {
	ID           ID
	StateTopic   *string
	StateOn      *string
	StateOff     *string
	CommandTopic *string
	CommandOn    *string
	CommandOff   *string
}

// ThingQuery selects things. Without First every match is returned, which
// is what the original argument-less `things` did.
type ThingQuery struct {
	All          bool // every thing (admins only); else the active org's
	Name         string
	NameContains string
	SortBy       string // "name" or "created" (default)
	Desc         bool
	SortSet      bool // false: default order, created descending
	First        *int
	After        string
}

// MaxPageSize bounds `first`.
const MaxPageSize = 1000

// ThingPage is one page of things.
type ThingPage struct {
	Items []Thing
	// Cursors[i] resumes the listing right after Items[i].
	Cursors     []string
	TotalCount  int
	EndCursor   string
	HasNextPage bool
}

// Things lists things: admins may ask for all, everybody else gets the
// things of their active org.
func (c *Core) Things(a Actor, q ThingQuery) (ThingPage, error) {
	if err := requireAuth(a); err != nil {
		return ThingPage{}, err
	}
	if q.All && !a.Admin {
		return ThingPage{}, errf(CodeForbidden, "no authorization to request all things")
	}
	if q.First != nil && (*q.First < 0 || *q.First > MaxPageSize) {
		return ThingPage{}, errf(CodeBadInput, "first must be between 0 and %d", MaxPageSize)
	}
	if q.SortBy == "" {
		q.SortBy, q.Desc = "created", !q.SortSet || q.Desc
	}
	if q.SortBy != "name" && q.SortBy != "created" {
		return ThingPage{}, errf(CodeBadInput, "unknown sort field %q", q.SortBy)
	}
	active := c.ActiveOrg(a)
	needle := strings.ToLower(q.NameContains)

	c.mu.RLock()
	var items []Thing
	for _, t := range c.things {
		if !q.All && (active.IsZero() || t.OrgID != active) {
			continue
		}
		if q.NameContains != "" {
			if !strings.Contains(strings.ToLower(t.Name), needle) {
				continue
			}
		} else if q.Name != "" && t.Name != q.Name {
			continue
		}
		items = append(items, *t)
	}
	c.mu.RUnlock()

	key := func(t *Thing) string {
		if q.SortBy == "name" {
			return t.Name
		}
		return fmt.Sprintf("%020d", t.Created+math.MaxInt32) // non-negative, fixed width
	}
	less := func(ka, ia, kb, ib string) bool {
		if ka != kb {
			return (ka < kb) != q.Desc
		}
		return (ia < ib) != q.Desc
	}
	sort.Slice(items, func(i, j int) bool {
		return less(key(&items[i]), items[i].ID.Hex(), key(&items[j]), items[j].ID.Hex())
	})
	page := ThingPage{TotalCount: len(items)}
	start := 0
	if q.After != "" {
		ck, cid, err := decodeCursor(q.After)
		if err != nil {
			return ThingPage{}, err
		}
		start = sort.Search(len(items), func(i int) bool {
			return less(ck, cid, key(&items[i]), items[i].ID.Hex())
		})
	}
	end := len(items)
	if q.First != nil && start+*q.First < end {
		end = start + *q.First
		page.HasNextPage = true
	}
	page.Items = items[start:end]
	page.Cursors = make([]string, len(page.Items))
	for i := range page.Items {
		page.Cursors[i] = encodeCursor(key(&page.Items[i]), page.Items[i].ID.Hex())
	}
	if n := len(page.Items); n > 0 {
		page.EndCursor = page.Cursors[n-1]
	}
	return page, nil
}

func encodeCursor(key, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(key + "\x00" + id))
}

func decodeCursor(s string) (key, id string, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return "", "", errf(CodeBadInput, "invalid cursor")
	}
	k, i, ok := strings.Cut(string(raw), "\x00")
	if !ok {
		return "", "", errf(CodeBadInput, "invalid cursor")
	}
	return k, i, nil
}

// Thing returns one thing to an admin or a member of its org.
func (c *Core) Thing(a Actor, id ID) (Thing, error) {
	if err := requireAuth(a); err != nil {
		return Thing{}, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.things[id]
	if !ok {
		if a.Admin {
			return Thing{}, errf(CodeNotFound, "Thing does not exist")
		}
		return Thing{}, errForbidden
	}
	if !c.canReadThing(a, t) {
		return Thing{}, errForbidden
	}
	return *t, nil
}

// ThingParent returns the parent of a thing if the caller may see it.
func (c *Core) ThingParent(a Actor, t *Thing) (*Thing, error) {
	if t.ParentID.IsZero() {
		return nil, nil
	}
	p, err := c.Thing(a, t.ParentID)
	if err != nil {
		return nil, nil // a dangling or foreign parent is shown as none
	}
	return &p, nil
}

// ThingOrg returns the org of a thing if the caller may see it.
func (c *Core) ThingOrg(a Actor, t *Thing) (*Org, error) {
	if t.OrgID.IsZero() {
		return nil, nil
	}
	o, err := c.Org(a, t.OrgID)
	if err != nil {
		return nil, nil
	}
	return &o, nil
}

// CreateThing adds an unassigned, disabled thing (admins only).
func (c *Core) CreateThing(ctx context.Context, a Actor, name, typ string) (Thing, error) {
	if err := requireAdmin(a); err != nil {
		return Thing{}, err
	}
	if err := ValidName("thing", name); err != nil {
		return Thing{}, err
	}
	if err := validThingType(typ); err != nil {
		return Thing{}, err
	}
	t := &Thing{ID: primitive.NewObjectID(), Name: name, Type: typ, Created: c.unix()}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.st.Things.Insert(ctx, thingDoc(t)); err != nil {
		e := storeErr(err, "thing")
		if CodeOf(e) == CodeConflict {
			return Thing{}, &Error{Code: CodeConflict, Msg: fmt.Sprintf("thing of such name (%s) already exists", name), Err: err}
		}
		return Thing{}, internal("error while creating thing", err)
	}
	c.mu.Lock()
	c.putThing(t)
	c.mu.Unlock()
	c.emit(Event{Kind: ThingChanged, ID: t.ID})
	c.audit(ctx, a, "createThing", "thing "+t.Name+" ("+t.Type+")")
	return *t, nil
}

// editThing loads a thing for a settings change by the caller, applies fn
// to a copy, validates and saves it, and records the change as action.
func (c *Core) editThing(ctx context.Context, a Actor, action string, id ID, fn func(cur *Thing, n *Thing) error) (Thing, error) {
	if err := requireAuth(a); err != nil {
		return Thing{}, err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	live, ok := c.things[id]
	var cur *Thing
	if ok {
		cp := *live
		cur = &cp
	}
	allowed := ok && c.canEditThing(a, cur)
	c.mu.RUnlock()
	switch {
	case !ok && a.Admin:
		return Thing{}, errf(CodeNotFound, "Thing does not exist")
	case !ok || !allowed:
		return Thing{}, errForbidden
	}
	n := *cur
	if err := fn(cur, &n); err != nil {
		return Thing{}, err
	}
	if err := validateThing(&n); err != nil {
		return Thing{}, err
	}
	if err := c.saveThing(ctx, cur, &n, "Thing"); err != nil {
		return Thing{}, err
	}
	c.mu.Lock()
	if live, ok := c.things[id]; ok {
		keepLiveState(&n, cur, live)
	}
	c.putThing(&n)
	c.mu.Unlock()
	if stateOf(cur) != stateOf(&n) {
		if err := c.writeStateOf(ctx, id); err != nil {
			return Thing{}, err
		}
	}
	c.emit(Event{Kind: ThingChanged, ID: n.ID})
	c.audit(ctx, a, action, changes("thing "+cur.Name, thingDoc(cur), thingDoc(&n)))
	return n, nil
}

func setStr(dst *string, src *string) {
	if src != nil {
		*dst = *src
	}
}

func setBool(dst *bool, src *bool) {
	if src != nil {
		*dst = *src
	}
}

// UpdateThing changes a thing's settings. Members of its org may change
// settings; only admins may assign it to another org.
func (c *Core) UpdateThing(ctx context.Context, a Actor, u ThingUpdate) (Thing, error) {
	return c.editThing(ctx, a, "updateThing", u.ID, func(cur, n *Thing) error {
		if u.SetOrg && u.OrgID != cur.OrgID {
			if !a.Admin {
				return errf(CodeForbidden, "only admins may assign things to organizations")
			}
			if !u.OrgID.IsZero() {
				c.mu.RLock()
				_, ok := c.orgs[u.OrgID]
				c.mu.RUnlock()
				if !ok {
					return errf(CodeNotFound, "organization does not exist")
				}
			}
			n.OrgID = u.OrgID
		}
		if u.SetParent && u.ParentID != cur.ParentID {
			if !u.ParentID.IsZero() {
				c.mu.RLock()
				_, ok := c.things[u.ParentID]
				c.mu.RUnlock()
				if !ok || u.ParentID == cur.ID {
					return errf(CodeBadInput, "parent thing does not exist")
				}
			}
			n.ParentID = u.ParentID
		}
		setStr(&n.PiotID, u.PiotID)
		setStr(&n.Name, u.Name)
		setStr(&n.Type, u.Type)
		setStr(&n.Description, u.Description)
		setStr(&n.Alias, u.Alias)
		setBool(&n.Enabled, u.Enabled)
		if u.LastSeenInterval != nil {
			n.LastSeenInterval = *u.LastSeenInterval
		}
		if u.Voltage != nil {
			n.Voltage = *u.Voltage
		}
		setStr(&n.AvailabilityTopic, u.AvailabilityTopic)
		setStr(&n.TelemetryTopic, u.TelemetryTopic)
		setBool(&n.StoreInfluxDB, u.StoreInfluxDB)
		setBool(&n.StoreMySQLDB, u.StoreMySQLDB)
		if u.StoreMySQLDBInterval != nil {
			n.StoreMySQLDBInterval = *u.StoreMySQLDBInterval
		}
		if u.LocLat != nil {
			n.LocLat = *u.LocLat
		}
		if u.LocLng != nil {
			n.LocLng = *u.LocLng
		}
		setBool(&n.LocTracking, u.LocTracking)
		setStr(&n.LocMQTTTopic, u.LocMQTTTopic)
		setStr(&n.LocMQTTLatValue, u.LocMQTTLatValue)
		setStr(&n.LocMQTTLngValue, u.LocMQTTLngValue)
		setStr(&n.LocMQTTSatValue, u.LocMQTTSatValue)
		setStr(&n.LocMQTTTsValue, u.LocMQTTTsValue)
		setBool(&n.BatteryLevelTracking, u.BatteryLevelTracking)
		setStr(&n.BatteryMQTTTopic, u.BatteryMQTTTopic)
		setStr(&n.BatteryMQTTLevelValue, u.BatteryMQTTLevelValue)
		return nil
	})
}

// UpdateThingSensor changes sensor settings (admins and members).
func (c *Core) UpdateThingSensor(ctx context.Context, a Actor, u SensorUpdate) (Thing, error) {
	return c.editThing(ctx, a, "updateThingSensorData", u.ID, func(_, n *Thing) error {
		setStr(&n.Sensor.Class, u.Class)
		setStr(&n.Sensor.Unit, u.Unit)
		setStr(&n.Sensor.MeasurementTopic, u.MeasurementTopic)
		setStr(&n.Sensor.MeasurementValue, u.MeasurementValue)
		return nil
	})
}

// UpdateThingSwitch changes switch settings (admins and members).
func (c *Core) UpdateThingSwitch(ctx context.Context, a Actor, u SwitchUpdate) (Thing, error) {
	return c.editThing(ctx, a, "updateThingSwitchData", u.ID, func(_, n *Thing) error {
		setStr(&n.Switch.StateTopic, u.StateTopic)
		setStr(&n.Switch.StateOn, u.StateOn)
		setStr(&n.Switch.StateOff, u.StateOff)
		setStr(&n.Switch.CommandTopic, u.CommandTopic)
		setStr(&n.Switch.CommandOn, u.CommandOn)
		setStr(&n.Switch.CommandOff, u.CommandOff)
		return nil
	})
}

// SetThingAlarm raises or clears a thing's alarm; the activation time
// records the last state change.
func (c *Core) SetThingAlarm(ctx context.Context, a Actor, id ID, active bool) (bool, error) {
	_, err := c.editThing(ctx, a, "setThingAlarm", id, func(cur, n *Thing) error {
		if cur.AlarmActive != active {
			n.AlarmActive = active
			n.AlarmActivated = c.unix()
		}
		return nil
	})
	return active, err
}

// CommandPublisher sends a command to devices; the broker provides it.
type CommandPublisher func(ctx context.Context, topic string, payload []byte) error

// SetCommandPublisher connects core to the broker for switch commands.
func (c *Core) SetCommandPublisher(p CommandPublisher) {
	c.cmdMu.Lock()
	c.cmd = p
	c.cmdMu.Unlock()
}

// SetSwitchState records the wanted state of a switch and, when the switch
// has a command topic and a publisher is connected, sends command_on or
// command_off to org/<org>/<command_topic> (admins and members).
func (c *Core) SetSwitchState(ctx context.Context, a Actor, id ID, on bool) (Thing, error) {
	t, err := c.editThing(ctx, a, "setSwitchState", id, func(cur, n *Thing) error {
		if cur.Type != ThingSwitch {
			return errf(CodeBadInput, "thing %s is not a switch", cur.Name)
		}
		n.Switch.State = on
		return nil
	})
	if err != nil {
		return t, err
	}
	c.cmdMu.Lock()
	pub := c.cmd
	c.cmdMu.Unlock()
	org, assigned := c.OrgNameOf(t.OrgID)
	if pub == nil || !assigned || t.Switch.CommandTopic == "" {
		return t, nil
	}
	payload := t.Switch.CommandOff
	if on {
		payload = t.Switch.CommandOn
	}
	if err := pub(ctx, "org/"+org+"/"+t.Switch.CommandTopic, []byte(payload)); err != nil {
		return t, internal("switch state stored but the command could not be published", err)
	}
	return t, nil
}

// DeleteThing removes a thing (admins only); its children lose their
// parent rather than point at nothing.
func (c *Core) DeleteThing(ctx context.Context, a Actor, id ID) error {
	if err := requireAdmin(a); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	var goneName string
	live, ok := c.things[id]
	if ok {
		goneName = live.Name
	}
	var children []Thing
	for _, t := range c.things {
		if t.ParentID == id {
			children = append(children, *t)
		}
	}
	c.mu.RUnlock()
	if !ok {
		return errf(CodeNotFound, "Thing does not exist")
	}
	for k := range children {
		if err := c.detach(ctx, &children[k], func(n *Thing) { n.ParentID = primitive.NilObjectID }); err != nil {
			return err
		}
	}
	if err := c.st.Things.Delete(ctx, id); err != nil {
		return storeErr(err, "Thing")
	}
	c.mu.Lock()
	c.dropThing(id)
	c.mu.Unlock()
	c.emit(Event{Kind: ThingDeleted, ID: id})
	c.audit(ctx, a, "deleteThing", "thing "+goneName)
	return nil
}

// detach saves t, a copy taken under c.mu, as fn changes it (a child
// losing its deleted parent, a thing its deleted org), keeping the state
// ingest changed since the copy.
func (c *Core) detach(ctx context.Context, t *Thing, fn func(n *Thing)) error {
	n := *t
	fn(&n)
	if err := c.saveThing(ctx, t, &n, "thing"); err != nil {
		return err
	}
	c.mu.Lock()
	if live, ok := c.things[n.ID]; ok {
		keepLiveState(&n, t, live)
	}
	c.putThing(&n)
	c.mu.Unlock()
	return nil
}

// validateThing checks every user-settable field of a thing.
func validateThing(t *Thing) error {
	if err := ValidName("thing", t.Name); err != nil {
		return err
	}
	if err := validThingType(t.Type); err != nil {
		return err
	}
	if len(t.PiotID) > MaxNameLen {
		return errf(CodeBadInput, "piotId is longer than %d bytes", MaxNameLen)
	}
	if len(t.Alias) > MaxNameLen {
		return errf(CodeBadInput, "alias is longer than %d bytes", MaxNameLen)
	}
	for field, v := range map[string]string{"description": t.Description, "alias": t.Alias, "piotId": t.PiotID} {
		if err := validText(field, v); err != nil {
			return err
		}
	}
	topics := map[string]string{
		"availability_topic": t.AvailabilityTopic, "telemetry_topic": t.TelemetryTopic,
		"location_mqtt_topic": t.LocMQTTTopic, "battery_mqtt_topic": t.BatteryMQTTTopic,
		"sensor.measurement_topic": t.Sensor.MeasurementTopic, "switch.state_topic": t.Switch.StateTopic,
		"switch.command_topic": t.Switch.CommandTopic,
	}
	for field, v := range topics {
		if err := validTopic(field, v); err != nil {
			return err
		}
	}
	paths := map[string]string{
		"location_mqtt_lat_value": t.LocMQTTLatValue, "location_mqtt_lng_value": t.LocMQTTLngValue,
		"location_mqtt_sat_value": t.LocMQTTSatValue, "location_mqtt_ts_value": t.LocMQTTTsValue,
		"battery_mqtt_level_value": t.BatteryMQTTLevelValue, "sensor.measurement_value": t.Sensor.MeasurementValue,
		"sensor.class": t.Sensor.Class, "sensor.unit": t.Sensor.Unit,
		"switch.state_on": t.Switch.StateOn, "switch.state_off": t.Switch.StateOff,
		"switch.command_on": t.Switch.CommandOn, "switch.command_off": t.Switch.CommandOff,
	}
	for field, v := range paths {
		if len(v) > MaxTopicLen {
			return errf(CodeBadInput, "%s is longer than %d bytes", field, MaxTopicLen)
		}
		if err := validText(field, v); err != nil {
			return err
		}
	}
	switch {
	case t.LocLat < -90 || t.LocLat > 90 || math.IsNaN(t.LocLat):
		return errf(CodeBadInput, "location_lat must be within [-90, 90]")
	case t.LocLng < -180 || t.LocLng > 180 || math.IsNaN(t.LocLng):
		return errf(CodeBadInput, "location_lng must be within [-180, 180]")
	case t.LastSeenInterval < 0 || t.LastSeenInterval > MaxLastSeenPeriod:
		return errf(CodeBadInput, "last_seen_interval must be within [0, %d] seconds", MaxLastSeenPeriod)
	case t.StoreMySQLDBInterval < 0 || t.StoreMySQLDBInterval > MaxLastSeenPeriod:
		return errf(CodeBadInput, "store_mysqldb_interval must be within [0, %d] seconds", MaxLastSeenPeriod)
	case math.IsNaN(t.Voltage) || math.IsInf(t.Voltage, 0):
		return errf(CodeBadInput, "voltage must be a finite number")
	}
	return nil
}

// ParseID decodes a hex object id given by a client.
func ParseID(s string) (ID, error) {
	id, err := primitive.ObjectIDFromHex(s)
	if err != nil {
		return primitive.NilObjectID, errf(CodeBadInput, "cannot decode ID %s", strconv.Quote(s))
	}
	return id, nil
}

// ThingByPiotID finds a thing by its hardware id (adapters); callers that
// act on it must still go through the authorized operations.
func (c *Core) ThingByPiotID(piotID string) (Thing, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.thingByPiot[piotID]
	if !ok {
		return Thing{}, false
	}
	return *c.things[id], true
}

// SetThingAESKey sets the AES-128 key (16 bytes) the device encrypts its
// PIOT packets with, or clears it (""). Whoever may edit the thing may set
// its key; nobody can read it back (Thing.AESKey never leaves the core
// through the API).
func (c *Core) SetThingAESKey(ctx context.Context, a Actor, id ID, key string) (Thing, error) {
	if key != "" && len(key) != 16 {
		return Thing{}, errf(CodeBadInput, "an AES-128 key is exactly 16 bytes, got %d", len(key))
	}
	return c.editThing(ctx, a, "setThingAesKey", id, func(cur, n *Thing) error {
		if key != "" && cur.PiotID == "" {
			return errf(CodeBadInput, "only a thing with a piot id (a device) can have a key")
		}
		n.AESKey = key
		return nil
	})
}

// DeviceKeys calls fn with the piot id and key of every device that has
// its own key, until fn returns false; the adapter tries them on
// encrypted packets that do not say which device sent them.
func (c *Core) DeviceKeys(fn func(piotID, key string) bool) {
	c.mu.RLock()
	keys := make([][2]string, 0, len(c.keyed))
	for id := range c.keyed {
		if t := c.things[id]; t != nil && t.AESKey != "" {
			keys = append(keys, [2]string{t.PiotID, t.AESKey})
		}
	}
	c.mu.RUnlock()
	for _, k := range keys {
		if !fn(k[0], k[1]) {
			return
		}
	}
}

// ThingByName finds a thing by its (globally unique) name.
func (c *Core) ThingByName(name string) (Thing, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.thingByName[name]
	if !ok {
		return Thing{}, false
	}
	return *c.things[id], true
}

// UnassignedChildren counts the things of a parent (a device's sensors)
// in no organization; adapters give each device a share of the
// auto-registration budget with it.
func (c *Core) UnassignedChildren(parent ID) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, t := range c.things {
		if t.OrgID.IsZero() && t.ParentID == parent {
			n++
		}
	}
	return n
}

// UnassignedThings counts things not assigned to any org; adapters cap
// auto-registration with it.
func (c *Core) UnassignedThings() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, t := range c.things {
		if t.OrgID.IsZero() {
			n++
		}
	}
	return n
}
