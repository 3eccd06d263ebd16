package adapter

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/piot-appliance/piot/services/adapter/protocol"
	"github.com/piot-appliance/piot/services/core"
)

// Registry registers devices on first contact, with the rules both device
// protocols share: a thing is found by its piot_id; a new one gets
// name = piot_id = id and is disabled, unassigned (bounded by
// MaxUnassigned) or, relayed by an edge adapter, in that adapter's
// organization.
type Registry struct {
	core          *core.Core
	maxUnassigned int
	log           *slog.Logger
	mu            sync.Mutex // serializes lookup-or-register
}

// NewRegistry returns a registry.
func NewRegistry(c *core.Core, maxUnassigned int, log *slog.Logger) *Registry {
	return &Registry{core: c, maxUnassigned: maxUnassigned, log: log}
}

// deviceShare refuses a packet that would register more new unassigned
// sensors for its device than the device's share of the budget (a
// quarter of MaxUnassigned), so that one device, or one packet, cannot
// use up the registration budget of all the others. Callers hold the lock.
func (r *Registry) deviceShare(dev core.Thing, p *packet, src Source) *RegError {
	if src.Relayed() || !dev.OrgID.IsZero() {
		return nil // registered into an organization, not unassigned
	}
	share := max(r.maxUnassigned/4, 1)
	fresh := 0
	for _, rd := range p.Readings {
		for _, m := range rd.Measurements() {
			if _, ok := r.core.ThingByPiotID(m.Prefix + rd.Address); !ok {
				fresh++
			}
		}
	}
	if fresh == 0 {
		return nil
	}
	if have := r.core.UnassignedChildren(dev.ID); have+fresh > share {
		return &RegError{http.StatusForbidden, ReasonUnassignedCap,
			fmt.Sprintf("auto-registration refused: a device may register at most %d unassigned sensors (this one has %d and sent %d new)", share, have, fresh), nil}
	}
	return nil
}

// RegError is a registration that failed, with its answer.
type RegError struct {
	Status      int
	Reason, Msg string
	Err         error // the cause of a 5xx
}

// Outcome is the answer to a packet whose registration failed.
func (e *RegError) Outcome() Outcome {
	o := protocol.Refused(e.Status, e.Reason, e.Msg)
	if e.Status == http.StatusInsufficientStorage {
		o.RetryAfter = retryStorageFull
	}
	return o
}

// regFailed is the error of a registration that the store refused: 507
// when its storage is full, else an internal error.
func regFailed(msg string, err error) *RegError {
	if core.CodeOf(err) == core.CodeStorageFull {
		return &RegError{http.StatusInsufficientStorage, ReasonStorageFull, msg + ": the appliance's storage is full, try again later", err}
	}
	return &RegError{http.StatusInternalServerError, ReasonInternal, msg, err}
}

// Lock serializes a caller's sequence of FindOrCreate calls.
func (r *Registry) Lock() { r.mu.Lock() }

// Unlock ends it.
func (r *Registry) Unlock() { r.mu.Unlock() }

// FindOrCreate looks a thing up by piot_id and registers it if missing;
// setup completes a new thing. Callers hold the lock.
func (r *Registry) FindOrCreate(ctx context.Context, id, typ string, src Source, setup func(core.Thing) (core.Thing, error)) (core.Thing, *RegError) {
	if t, ok := r.core.ThingByPiotID(id); ok {
		return t, nil
	}
	if _, taken := r.core.ThingByName(id); taken {
		return core.Thing{}, &RegError{http.StatusConflict, ReasonNameConflict,
			fmt.Sprintf("a thing named %q exists without this piot id", id), nil}
	}
	if !src.Relayed() && r.core.UnassignedThings() >= r.maxUnassigned {
		return core.Thing{}, &RegError{http.StatusForbidden, ReasonUnassignedCap,
			"auto-registration refused: too many unassigned things", nil}
	}
	t, err := r.core.CreateThing(ctx, core.System, id, typ)
	if err != nil {
		if core.CodeOf(err) == core.CodeConflict {
			return core.Thing{}, &RegError{http.StatusConflict, ReasonNameConflict, core.Message(err), err}
		}
		return core.Thing{}, regFailed("cannot register thing", err)
	}
	pid := id
	upd := core.ThingUpdate{ID: t.ID, PiotID: &pid}
	if src.Relayed() {
		// First seen through an organization's edge adapter: registered
		// into that organization, still disabled.
		upd.SetOrg, upd.OrgID = true, src.OrgID
	}
	if t, err = r.core.UpdateThing(ctx, core.System, upd); err != nil {
		return core.Thing{}, regFailed("cannot register thing", err)
	}
	if t, err = setup(t); err != nil {
		return core.Thing{}, regFailed("cannot register thing", err)
	}
	r.log.Info("registered thing", "name", id, "type", typ, "relayed", src.Relayed())
	return t, nil
}
