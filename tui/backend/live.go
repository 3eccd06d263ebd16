package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/piot-appliance/piot/services/broker"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/tui"
)

// Follower is the broker side of the live feed.
type Follower interface {
	Follow(ctx context.Context, filter string, buf int) (<-chan broker.Message, error)
	PublishMessage(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error
}

// MaxPublishPayload bounds a message published from the console, well
// below the broker's packet limit.
const MaxPublishPayload = 64 << 10

// DefaultLiveRecheck is how often a live subscription re-checks the
// actor's rights besides on core's change events.
const DefaultLiveRecheck = 5 * time.Second

// Live implements tui.LiveFeed with the broker's followers, enforcing the
// broker's tenancy rule with core as the source of memberships.
type Live struct {
	core    *core.Core
	broker  Follower
	buf     int
	recheck time.Duration
}

// NewLive builds the live feed. buf <= 0 means broker.DefaultFollowBuffer,
// recheck <= 0 DefaultLiveRecheck.
func NewLive(c *core.Core, b Follower, buf int, recheck time.Duration) *Live {
	if recheck <= 0 {
		recheck = DefaultLiveRecheck
	}
	return &Live{core: c, broker: b, buf: buf, recheck: recheck}
}

// Subscribe implements tui.LiveFeed: an admin may follow any filter,
// everybody else only filters whose first two levels are literally
// org/<name> for an org they belong to, with something below (as the
// broker's ACL: org/<name>/#, org/<name>/+/state, ...). The channel is
// closed when ctx ends, the broker stops, or the actor loses the right:
// the user is deleted or demoted, leaves the org, or the org is renamed or
// deleted. Rights are re-checked on every core change and every recheck
// interval.
func (l *Live) Subscribe(ctx context.Context, a core.Actor, filter string) (<-chan tui.LiveMessage, error) {
	if err := l.authorize(a, filter); err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancel(ctx)
	in, err := l.broker.Follow(fctx, filter, l.buf)
	if err != nil {
		cancel()
		switch {
		case errors.Is(err, broker.ErrBadFilter):
			return nil, core.NewError(core.CodeBadInput, "invalid topic filter")
		case errors.Is(err, broker.ErrNotRunning):
			return nil, core.NewError(core.CodeInternal, "the MQTT broker is not running")
		}
		return nil, err
	}
	changed := make(chan struct{}, 1)
	unsub := l.core.Subscribe(func(e core.Event) {
		switch e.Kind {
		case core.OrgChanged, core.OrgDeleted, core.MembershipChanged, core.UserChanged, core.UserDeleted:
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	})
	out := make(chan tui.LiveMessage, cap(in))
	go func() {
		defer close(out)
		defer unsub()
		defer cancel()
		t := time.NewTicker(l.recheck)
		defer t.Stop()
		var pending *tui.LiveMessage // read from the broker, not yet taken by the console
		for {
			recv, send := in, out
			if pending != nil {
				recv = nil // the broker's channel buffers (and drops) meanwhile
			} else {
				send = nil
			}
			var next tui.LiveMessage
			if pending != nil {
				next = *pending
			}
			select {
			case m, ok := <-recv:
				if !ok {
					return
				}
				pending = &tui.LiveMessage{Time: m.Time, Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retained: m.Retained}
			case send <- next:
				pending = nil
			case <-changed:
				if !l.stillAllowed(a, filter) {
					return
				}
			case <-t.C:
				if !l.stillAllowed(a, filter) {
					return
				}
			case <-fctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// stillAllowed applies core's rule again with the actor's current rights.
func (l *Live) stillAllowed(a core.Actor, filter string) bool {
	return l.authorize(a, filter) == nil
}

// authorize is core's rule; the current admin flag and memberships are
// read from core, not from the actor captured at login.
func (l *Live) authorize(a core.Actor, filter string) error {
	return l.core.MayFollowTopics(a, filter)
}

// Publish implements tui.LiveFeed. The broker publishes as the appliance
// (bypassing its ACL), so core's decision here is the only one; the
// audit entry names the topic and size, never the payload, which may be
// a device's secret.
func (l *Live) Publish(ctx context.Context, a core.Actor, m tui.LiveMessage) error {
	if err := l.core.MayPublishTopic(a, m.Topic); err != nil {
		return err
	}
	switch {
	case m.QoS > 2:
		return core.NewError(core.CodeBadInput, "QoS must be 0, 1 or 2")
	case len(m.Payload) > MaxPublishPayload:
		return core.NewError(core.CodeBadInput, fmt.Sprintf("payload is longer than %d bytes", MaxPublishPayload))
	}
	if err := l.broker.PublishMessage(ctx, m.Topic, m.Payload, m.QoS, m.Retained); err != nil {
		if errors.Is(err, broker.ErrNotRunning) {
			return core.NewError(core.CodeInternal, "the MQTT broker is not running")
		}
		return fmt.Errorf("live: publish on %s: %w", m.Topic, err)
	}
	target := fmt.Sprintf("topic %s (%d B, QoS %d", m.Topic, len(m.Payload), m.QoS)
	if m.Retained {
		target += ", retained"
	}
	l.core.Record(ctx, a, "publishMessage", target+")")
	return nil
}
