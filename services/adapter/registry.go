package adapter

import (
	"context"
	"sync"

	"github.com/piot-appliance/piot/services/core"
)

// Registry registers devices on first contact through core's
// RegisterDevice, with the rules both device protocols share: a thing is
// found by its piot_id; a new one gets name = piot_id = id and is
// disabled, unassigned (bounded by MaxUnassigned) or, relayed by an edge
// adapter, in that adapter's organization.
type Registry struct {
	core          *core.Core
	maxUnassigned int
	// mu serializes a packet's registrations, so that the budget checked
	// for a device's sensors still holds when they are registered.
	mu sync.Mutex
}

// NewRegistry returns a registry.
func NewRegistry(c *core.Core, maxUnassigned int) *Registry {
	return &Registry{core: c, maxUnassigned: maxUnassigned}
}

// Lock serializes a caller's sequence of FindOrCreate calls.
func (r *Registry) Lock() { r.mu.Lock() }

// Unlock ends it.
func (r *Registry) Unlock() { r.mu.Unlock() }

// FindOrCreate looks a thing up by piot_id and registers it if missing,
// completed by setup; a sensor names its device as parent. Errors are
// core's (answer them with Refusal). Callers hold the lock.
func (r *Registry) FindOrCreate(ctx context.Context, id, typ string, src Source, parent *core.Thing, setup func(*core.Thing)) (core.Thing, error) {
	return r.core.RegisterDevice(ctx, core.DeviceRegistration{
		PiotID: id, Type: typ, Source: src.core(), MaxUnassigned: r.maxUnassigned, Parent: parent, Setup: setup,
	})
}

// sensorShare refuses a packet that would register more new unassigned
// sensors for its device than core allows one device. Callers hold the
// lock.
func (r *Registry) sensorShare(dev core.Thing, p *packet, src Source) error {
	var ids []string
	for _, rd := range p.Readings {
		for _, m := range rd.Measurements() {
			ids = append(ids, m.Prefix+rd.Address)
		}
	}
	return r.core.MaySensorsRegister(dev, ids, src.core(), r.maxUnassigned)
}
