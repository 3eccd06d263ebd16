package adapter

import (
	"net/http"
	"time"

	"github.com/piot-appliance/piot/services/adapter/protocol"
	"github.com/piot-appliance/piot/services/core"
)

// Rejections and Outcome are package protocol's, which the edge adapter
// shares; the names stay here for the appliance's handlers.
type (
	Rejections = protocol.Rejections
	Outcome    = protocol.Outcome
)

// Source says where a packet came from.
type Source struct {
	// OrgID is the organization whose edge adapter relayed the packet
	// (zero: the device sent it here directly). Relayed packets are not
	// rate limited again, register new things into that organization
	// and reach only that organization's things.
	OrgID core.ID
	// Received is when the edge adapter received the packet; it stands in
	// for a device without its own time.
	Received time.Time
	// Device is set when the edge adapter logged in with a device's own
	// credentials: only that device and its sensors may be fed.
	Device core.ID
	// With are published together with the packet's messages, all or
	// none, when the packet is answered 200 (the relay's mark that the
	// packet was processed).
	With []Message
}

// Relayed reports whether an edge adapter relayed the packet.
func (s Source) Relayed() bool { return !s.OrgID.IsZero() }

func (s Source) mayDeliver(t core.Thing) bool {
	return !s.Relayed() || core.MayRelayTo(s.OrgID, s.Device, t)
}

// CheckDevice refuses, before anything is registered, a packet relayed
// with a device's own credentials that is not that device's.
func CheckDevice(c *core.Core, piotID string, src Source) Outcome {
	if src.Device.IsZero() {
		return Outcome{}
	}
	if t, ok := c.ThingByPiotID(piotID); !ok || t.ID != src.Device {
		return protocol.Refused(http.StatusForbidden, ReasonForeignDevice, "packet of another device than the credentials'")
	}
	return Outcome{}
}

// Retry-After of the answers to packets the appliance could not store:
// a full disk takes an admin, anything else (a store outage, a restart)
// usually passes within seconds.
const (
	retryStorageFull = time.Minute
	retryUnavailable = 5 * time.Second
)

// PublishRefused answers a packet whose messages were not stored: 507
// when the appliance's storage is full, else 503; both say when to try
// again. The cause is logged by the ingest, once per failure.
func PublishRefused(err error) Outcome {
	if core.CodeOf(err) == core.CodeStorageFull {
		return Outcome{Status: http.StatusInsufficientStorage, Reason: ReasonStorageFull,
			Msg: "the appliance's storage is full, try again later", RetryAfter: retryStorageFull}
	}
	return Outcome{Status: http.StatusServiceUnavailable, Reason: ReasonPublishFailed,
		Msg: "publishing failed, try again later", RetryAfter: retryUnavailable}
}

// DeliveryOrg is the gate every device protocol applies after
// registration: an unassigned or disabled device is answered 202 with the
// reason (its data is not published), a device of another organization
// than the relaying edge adapter's is refused; otherwise the org to
// publish under is returned.
func DeliveryOrg(c *core.Core, dev core.Thing, src Source) (string, Outcome) {
	if !src.mayDeliver(dev) {
		if src.Device.IsZero() {
			return "", protocol.Refused(http.StatusForbidden, ReasonForeignOrg, "device belongs to another organization")
		}
		return "", protocol.Refused(http.StatusForbidden, ReasonForeignDevice, "packet of another device than the credentials'")
	}
	if !dev.OrgID.IsZero() && !dev.Enabled {
		return "", Outcome{Status: http.StatusAccepted, Reason: ReasonDisabled, Result: ResultDisabled}
	}
	org, ok := c.OrgNameOf(dev.OrgID)
	if !ok {
		return "", Outcome{Status: http.StatusAccepted, Reason: ReasonNotAssigned, Result: ResultNotAssigned}
	}
	return org, Outcome{}
}
