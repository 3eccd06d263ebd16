package adapter

import (
	"errors"
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

// core is the source as core's device rules see it.
func (s Source) core() core.DeviceSource { return core.DeviceSource{Org: s.OrgID, Device: s.Device} }

// CheckDevice refuses, before anything is registered, a packet relayed
// with a device's own credentials that is not that device's.
func CheckDevice(c *core.Core, piotID string, src Source) Outcome {
	return Refusal(c.CheckRelayedDevice(piotID, src.core()))
}

// statusOf is where core's codes become the device protocols' HTTP
// statuses, for every refusal core decides.
func statusOf(code core.Code) int {
	switch code {
	case core.CodeBadInput:
		return http.StatusBadRequest
	case core.CodeForbidden, core.CodeUnauthenticated:
		return http.StatusForbidden
	case core.CodeConflict:
		return http.StatusConflict
	case core.CodeRateLimited:
		return http.StatusTooManyRequests
	case core.CodeUnavailable, core.CodeTimeout:
		return http.StatusServiceUnavailable
	case core.CodeStorageFull:
		return http.StatusInsufficientStorage
	default:
		return http.StatusInternalServerError
	}
}

// Refusal answers a packet core refused (nil: no answer yet, go on): the
// status by the code, the reason counted by the rule core names (or the
// code), core's message.
func Refusal(err error) Outcome {
	if err == nil {
		return Outcome{}
	}
	code := core.CodeOf(err)
	reason := ReasonInternal
	var rule core.DeviceRule
	switch {
	case errors.As(err, &rule):
		reason = string(rule)
	case code == core.CodeConflict:
		reason = ReasonNameConflict
	case code == core.CodeStorageFull:
		reason = ReasonStorageFull
	}
	o := protocol.Refused(statusOf(code), reason, core.Message(err))
	if code == core.CodeStorageFull {
		o.RetryAfter = retryStorageFull
	}
	return o
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
// registration, core's DeviceDelivery: an unassigned or disabled device is
// answered 202 with the reason (its data is not published), a device of
// another organization than the relaying edge adapter's is refused;
// otherwise the org to publish under is returned.
func DeliveryOrg(c *core.Core, dev core.Thing, src Source) (string, Outcome) {
	d, err := c.DeviceDelivery(dev, src.core())
	switch {
	case err != nil:
		return "", Refusal(err)
	case d.Held == core.RuleDisabled:
		return "", Outcome{Status: http.StatusAccepted, Reason: ReasonDisabled, Result: ResultDisabled}
	case !d.Delivers():
		return "", Outcome{Status: http.StatusAccepted, Reason: ReasonNotAssigned, Result: ResultNotAssigned}
	}
	return d.Org, Outcome{}
}
