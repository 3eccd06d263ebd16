package backend

import (
	"context"
	"errors"
	"fmt"

	"github.com/piot-appliance/piot/services/broker"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/tui"
)

// ClientBroker is the broker side of the Clients view.
type ClientBroker interface {
	Clients() []broker.Client
	Client(session string) (broker.Client, bool)
	Disconnect(session string) error
	DeleteSession(session string) error
	Retained() []broker.RetainedMessage
	DeleteRetained(topic string) error
}

// Clients implements tui.MQTTClients over the broker, with core deciding
// who sees and acts on what and recording every action.
type Clients struct {
	core   *core.Core
	broker ClientBroker
}

// NewClients builds the Clients view's backend.
func NewClients(c *core.Core, b ClientBroker) *Clients {
	return &Clients{core: c, broker: b}
}

// Clients implements tui.MQTTClients: the clients of the orgs in the
// actor's MQTT scope.
func (c *Clients) Clients(_ context.Context, a core.Actor) ([]tui.MQTTClient, error) {
	scope, err := c.core.MQTTScope(a)
	if err != nil {
		return nil, err
	}
	out := []tui.MQTTClient{}
	for _, cl := range c.broker.Clients() {
		if scope.Includes(cl.OrgID) {
			out = append(out, clientView(cl))
		}
	}
	return out, nil
}

// Retained implements tui.MQTTClients: the retained messages under the
// namespaces of the orgs in the actor's scope.
func (c *Clients) Retained(_ context.Context, a core.Actor) ([]tui.RetainedMessage, error) {
	scope, err := c.core.MQTTScope(a)
	if err != nil {
		return nil, err
	}
	out := []tui.RetainedMessage{}
	for _, m := range c.broker.Retained() {
		org, _ := c.core.OrgOfTopic(m.Topic)
		if !scope.Includes(org) {
			continue
		}
		name, _ := c.core.OrgNameOf(org)
		out = append(out, tui.RetainedMessage{Topic: m.Topic, Org: name, Payload: m.Payload, QoS: m.QoS, Created: m.Created})
	}
	return out, nil
}

// Disconnect implements tui.MQTTClients.
func (c *Clients) Disconnect(ctx context.Context, a core.Actor, session string) error {
	cl, err := c.session(a, session)
	if err != nil {
		return err
	}
	if err := c.broker.Disconnect(session); err != nil {
		return brokerError(err)
	}
	c.core.Record(ctx, a, "disconnectMqttClient", target(cl))
	return nil
}

// DeleteSession implements tui.MQTTClients.
func (c *Clients) DeleteSession(ctx context.Context, a core.Actor, session string) error {
	cl, err := c.session(a, session)
	if err != nil {
		return err
	}
	if err := c.broker.DeleteSession(session); err != nil {
		return brokerError(err)
	}
	c.core.Record(ctx, a, "deleteMqttSession", target(cl))
	return nil
}

// DeleteRetained implements tui.MQTTClients.
func (c *Clients) DeleteRetained(ctx context.Context, a core.Actor, topic string) error {
	org, _ := c.core.OrgOfTopic(topic)
	if err := c.core.MayManageMQTT(a, org); err != nil {
		return err
	}
	if err := c.broker.DeleteRetained(topic); err != nil {
		return brokerError(err)
	}
	c.core.Record(ctx, a, "deleteRetainedMessage", "retained message "+topic)
	return nil
}

// session finds a session the actor may act on. An unknown session
// counts as one of no org, so a member gets the same refusal for it as for
// another org's and cannot probe for client IDs.
func (c *Clients) session(a core.Actor, session string) (broker.Client, error) {
	cl, ok := c.broker.Client(session)
	if err := c.core.MayManageMQTT(a, cl.OrgID); err != nil {
		return broker.Client{}, err
	}
	if !ok {
		return broker.Client{}, core.NewError(core.CodeNotFound, "no such MQTT client or session (it may have just ended)")
	}
	return cl, nil
}

// brokerError maps the broker's refusals to core errors the console shows.
func brokerError(err error) error {
	switch {
	case errors.Is(err, broker.ErrNoSession), errors.Is(err, broker.ErrNoRetained):
		return core.NewError(core.CodeNotFound, "it is gone already (it may have just ended)")
	case errors.Is(err, broker.ErrConnected):
		return core.NewError(core.CodeConflict, "the client is connected again: disconnect it first")
	case errors.Is(err, broker.ErrNotOnline):
		return core.NewError(core.CodeConflict, "the client is not connected")
	case errors.Is(err, broker.ErrNotRunning):
		return core.NewError(core.CodeUnavailable, "the MQTT broker is not running")
	}
	return fmt.Errorf("mqtt clients: %w", err)
}

// target names a session in the audit trail.
func target(cl broker.Client) string {
	t := "mqtt client " + cl.Session
	if cl.Org != "" {
		t += " of org " + cl.Org
	}
	return t
}

// clientView is the console's copy of a broker client.
func clientView(cl broker.Client) tui.MQTTClient {
	v := tui.MQTTClient{
		Session: cl.Session, ClientID: cl.ClientID, Username: cl.Username, Org: cl.Org, Thing: cl.Thing,
		Remote: cl.Remote, Listener: cl.Listener, Protocol: protocolName(cl.ProtocolVersion),
		Since: cl.Since, Expires: cl.Expires, Connected: cl.Connected, Persistent: cl.Persistent,
		Inflight: cl.Inflight, QueuedBytes: cl.QueuedBytes,
	}
	for _, s := range cl.Subscriptions {
		v.Subscriptions = append(v.Subscriptions, tui.MQTTSubscription{Filter: s.Filter, QoS: s.QoS})
	}
	return v
}

// protocolName is the MQTT version of a CONNECT's protocol level.
func protocolName(level byte) string {
	switch level {
	case 3:
		return "3.1"
	case 4:
		return "3.1.1"
	case 5:
		return "5"
	}
	return fmt.Sprintf("level %d", level)
}
