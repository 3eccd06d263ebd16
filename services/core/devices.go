package core

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/bson/primitive"
)

// The device adapters' decisions: which packets are accepted, which things
// a packet registers, and whose data is delivered. The adapters only turn
// the answers into their protocol's (HTTP statuses, reasons counted).

// DeviceSource says through whom a device packet arrived.
type DeviceSource struct {
	// Org is the organization whose edge adapter relayed the packet; zero
	// when the device sent it to the appliance directly.
	Org ID
	// Device is set when the edge adapter logged in with a device's own
	// credentials: only that device and its sensors may be fed.
	Device ID
}

// Relayed reports whether an edge adapter relayed the packet.
func (s DeviceSource) Relayed() bool { return !s.Org.IsZero() }

// DeviceRule names the rule a device packet broke or the reason its data
// is held back. As the cause of a refusal it tells refusals of the same
// code apart (adapters count packets by it); its text is the counters'
// reason label.
type DeviceRule string

// The device rules.
const (
	// RuleForeignOrg: a relayed packet of a device of another
	// organization than the relaying edge adapter's.
	RuleForeignOrg DeviceRule = "foreign_org"
	// RuleForeignDevice: a packet relayed with a device's own credentials
	// that is not that device's (or its sensors').
	RuleForeignDevice DeviceRule = "foreign_device"
	// RuleUnassignedCap: auto-registration would exceed the budget of
	// unassigned things.
	RuleUnassignedCap DeviceRule = "unassigned_cap"
	// RuleNotAssigned: the device is in no organization; its data is
	// accepted but not delivered.
	RuleNotAssigned DeviceRule = "not_assigned"
	// RuleDisabled: the device is disabled; its data is accepted but not
	// delivered.
	RuleDisabled DeviceRule = "disabled"
)

func (r DeviceRule) Error() string { return string(r) }

func refuseDevice(rule DeviceRule, msg string) error {
	return &Error{Code: CodeForbidden, Msg: msg, Err: rule}
}

// CheckRelayedDevice refuses, before anything is registered, a packet
// relayed with a device's own credentials that is not that device's.
func (c *Core) CheckRelayedDevice(piotID string, src DeviceSource) error {
	if src.Device.IsZero() {
		return nil
	}
	if t, ok := c.ThingByPiotID(piotID); !ok || t.ID != src.Device {
		return refuseDevice(RuleForeignDevice, "packet of another device than the credentials'")
	}
	return nil
}

// Delivery is the decision on a registered thing's data: publish it under
// org/<Org>/, or, when Held is set, accept the packet and publish nothing.
type Delivery struct {
	Org  string
	Held DeviceRule // RuleNotAssigned or RuleDisabled
}

// Delivers reports whether the data is published.
func (d Delivery) Delivers() bool { return d.Held == "" }

// DeviceDelivery decides where the data of thing t (a device or one of
// its sensors) goes: a thing another organization's edge adapter (or
// another device's credentials) relayed is refused; an unassigned or
// disabled one is held back.
func (c *Core) DeviceDelivery(t Thing, src DeviceSource) (Delivery, error) {
	if src.Relayed() && !MayRelayTo(src.Org, src.Device, t) {
		if src.Device.IsZero() {
			return Delivery{}, refuseDevice(RuleForeignOrg, "device belongs to another organization")
		}
		return Delivery{}, refuseDevice(RuleForeignDevice, "packet of another device than the credentials'")
	}
	if !t.OrgID.IsZero() && !t.Enabled {
		return Delivery{Held: RuleDisabled}, nil
	}
	org, ok := c.OrgNameOf(t.OrgID)
	if !ok {
		return Delivery{Held: RuleNotAssigned}, nil
	}
	return Delivery{Org: org}, nil
}

// MayRelayTo says whether an edge adapter may feed thing t (publish its
// readings): one logged in with an organization's credentials only that
// organization's things; one logged in with a device's own credentials
// (device not zero) only that device and its sensors (children).
func MayRelayTo(org, device ID, t Thing) bool {
	if t.OrgID != org {
		return false
	}
	return device.IsZero() || t.ID == device || t.ParentID == device
}

// MayAdoptSensor says whether a packet relayed for device may make sensor
// s its child: a device's own credentials take only sensors nobody owns.
func MayAdoptSensor(device ID, s Thing) bool { return device.IsZero() || s.ParentID.IsZero() }

// DeviceRegistration is a thing a device packet names.
type DeviceRegistration struct {
	PiotID string
	Type   string // ThingDevice or ThingSensor
	Source DeviceSource
	// MaxUnassigned caps auto-registration of packets sent directly: no
	// new thing while this many are in no organization.
	MaxUnassigned int
	// Parent is the device a sensor's reading came with (nil for a
	// device); the sensor becomes its child when the rules allow.
	Parent *Thing
	// Setup fills in a new thing's protocol settings (topics, sensor
	// class and unit) before it is stored.
	Setup func(*Thing)
}

// RegisterDevice finds the thing a packet names by its piot_id or
// registers it in one write: name = piot_id, disabled, unassigned or, when
// relayed by an edge adapter, in that adapter's organization. A sensor
// found or created is made the child of r.Parent when in the same
// organization and MayAdoptSensor allows. Refusals: CodeConflict (a thing
// has the name without the piot_id), CodeForbidden with RuleUnassignedCap,
// CodeStorageFull, CodeInternal.
func (c *Core) RegisterDevice(ctx context.Context, r DeviceRegistration) (Thing, error) {
	t, err := c.findOrRegister(ctx, r)
	if err != nil || r.Parent == nil {
		return t, err
	}
	if t.ParentID == r.Parent.ID || t.OrgID != r.Parent.OrgID || !MayAdoptSensor(r.Source.Device, t) {
		return t, nil
	}
	if t, err = c.UpdateThing(ctx, System(), ThingUpdate{ID: t.ID, SetParent: true, ParentID: r.Parent.ID}); err != nil {
		return t, registrationFailed("cannot set sensor parent", err)
	}
	return t, nil
}

func (c *Core) findOrRegister(ctx context.Context, r DeviceRegistration) (Thing, error) {
	if t, ok := c.ThingByPiotID(r.PiotID); ok {
		return t, nil // every packet of a known device: no write lock
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if t, ok := c.ThingByPiotID(r.PiotID); ok {
		return t, nil
	}
	if _, taken := c.ThingByName(r.PiotID); taken {
		return Thing{}, errf(CodeConflict, "a thing named %q exists without this piot id", r.PiotID)
	}
	if !r.Source.Relayed() && c.UnassignedThings() >= r.MaxUnassigned {
		return Thing{}, refuseDevice(RuleUnassignedCap, "auto-registration refused: too many unassigned things")
	}
	t := &Thing{ID: primitive.NewObjectID(), Name: r.PiotID, PiotID: r.PiotID, Type: r.Type, Created: c.unix()}
	if r.Source.Relayed() {
		// First seen through an organization's edge adapter: registered
		// into that organization, still disabled.
		t.OrgID = r.Source.Org
	}
	if r.Parent != nil && t.OrgID == r.Parent.OrgID {
		t.ParentID = r.Parent.ID // a new sensor has no owner to keep
	}
	if r.Setup != nil {
		r.Setup(t)
	}
	if err := validateThing(t); err != nil {
		return Thing{}, registrationFailed("cannot register thing", err)
	}
	c.mu.RLock()
	_, orgOK := c.orgs[t.OrgID]
	c.mu.RUnlock()
	if !t.OrgID.IsZero() && !orgOK {
		return Thing{}, registrationFailed("cannot register thing", errf(CodeNotFound, "organization does not exist"))
	}
	if err := c.st.Things.Insert(ctx, thingDoc(t)); err != nil {
		e := storeErr(err, "thing")
		if CodeOf(e) == CodeConflict {
			return Thing{}, &Error{Code: CodeConflict, Msg: fmt.Sprintf("thing of such name (%s) already exists", t.Name), Err: err}
		}
		return Thing{}, registrationFailed("cannot register thing", err)
	}
	c.mu.Lock()
	c.putThing(t)
	c.mu.Unlock()
	c.emit(Event{Kind: ThingChanged, ID: t.ID})
	c.log.Info("registered thing", "name", t.Name, "type", t.Type, "relayed", r.Source.Relayed())
	c.audit(ctx, System(), "registerDevice", "thing "+t.Name+" ("+t.Type+")")
	return *t, nil
}

// registrationFailed is a registration the store refused: CodeStorageFull
// when its storage is full, else an internal error.
func registrationFailed(msg string, err error) error {
	if CodeOf(err) == CodeStorageFull || StorageFull(err) {
		return &Error{Code: CodeStorageFull, Msg: msg + ": the appliance's storage is full, try again later", Err: err}
	}
	return &Error{Code: CodeInternal, Msg: msg, Err: err}
}

// MaySensorsRegister refuses a packet that would register more new
// unassigned sensors for its device than the device's share of the
// budget (a quarter of maxUnassigned), so that one device, or one packet,
// cannot use up the registration budget of all the others. piotIDs are
// the sensors the packet names.
func (c *Core) MaySensorsRegister(dev Thing, piotIDs []string, src DeviceSource, maxUnassigned int) error {
	if src.Relayed() || !dev.OrgID.IsZero() {
		return nil // registered into an organization, not unassigned
	}
	share := max(maxUnassigned/4, 1)
	fresh := 0
	for _, id := range piotIDs {
		if _, ok := c.ThingByPiotID(id); !ok {
			fresh++
		}
	}
	if fresh == 0 {
		return nil
	}
	if have := c.UnassignedChildren(dev.ID); have+fresh > share {
		return refuseDevice(RuleUnassignedCap,
			fmt.Sprintf("auto-registration refused: a device may register at most %d unassigned sensors (this one has %d and sent %d new)", share, have, fresh))
	}
	return nil
}
