package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/piot-appliance/piot/services/adapter/relay/wire"
	"github.com/piot-appliance/piot/services/edge/spool"
)

// Uplink states in /status.
const (
	StateConnecting = "connecting"
	StateConnected  = "connected"
	StateBackoff    = "backoff"
)

// uplinkState is what /status and /metrics report of the uplink.
type uplinkState struct {
	mu        sync.Mutex
	state     string
	since     time.Time
	lastErr   string
	connects  uint64
	failures  uint64
	forwarded uint64
}

func (u *uplinkState) set(state string, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.state != state {
		u.state, u.since = state, time.Now()
	}
	if err != nil {
		u.lastErr = err.Error()
	}
	switch {
	case state == StateConnected:
		u.connects++
	case state == StateBackoff && err != nil:
		u.failures++
	}
}

func (u *uplinkState) addForwarded(n int) {
	u.mu.Lock()
	u.forwarded += uint64(n)
	u.mu.Unlock()
}

type uplinkSnapshot struct {
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`
	Connects  uint64    `json:"connects"`
	Failures  uint64    `json:"failures"`
	Forwarded uint64    `json:"forwarded"`
}

func (u *uplinkState) snapshot() uplinkSnapshot {
	u.mu.Lock()
	defer u.mu.Unlock()
	return uplinkSnapshot{State: u.state, Since: u.since, LastError: u.lastErr,
		Connects: u.connects, Failures: u.failures, Forwarded: u.forwarded}
}

// forward connects to the appliance and forwards the spool until ctx
// ends, reconnecting with capped exponential backoff and jitter.
func (e *Edge) forward(ctx context.Context) {
	const first = time.Second
	backoff := first
	for ctx.Err() == nil {
		e.up.set(StateConnecting, nil)
		start := time.Now()
		err := e.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 2*e.cfg.BackoffMax {
			backoff = first // it worked for a while: a fresh failure
		}
		// Full jitter in [backoff/2, backoff): edge adapters of one site
		// that lost the link together do not reconnect in step.
		wait := backoff/2 + rand.N(backoff/2)
		e.up.set(StateBackoff, err)
		e.log.Warn("uplink down", "err", err, "retry_in", wait.Round(time.Millisecond))
		backoff = min(2*backoff, e.cfg.BackoffMax)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

var errAckTimeout = errors.New("no acknowledgement in time")

// session is one MQTT connection: it sends the unacknowledged packets in
// spool order, a window at a time, and acknowledges them in the spool
// once the appliance did. Any trouble ends the session; the next one
// starts again from the oldest unacknowledged packet, so the appliance
// sees the packets of this edge adapter in order (it drops the resends).
func (e *Edge) session(ctx context.Context) error {
	lost := make(chan error, 1)
	opts := paho.NewClientOptions().
		AddBroker(e.cfg.Broker).
		SetClientID("piot-edge-" + e.id).
		SetUsername(e.cfg.Username).
		SetPassword(e.cfg.Password).
		// A persistent session; resending is ours (from the spool), so
		// paho's own store starts empty for every connection.
		SetCleanSession(false).
		SetStore(paho.NewMemoryStore()).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(15 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetPingTimeout(10 * time.Second).
		SetWriteTimeout(e.cfg.AckTimeout).
		SetOrderMatters(true).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	if e.cfg.TLS != nil {
		opts.SetTLSConfig(e.cfg.TLS)
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
	case <-time.After(20 * time.Second):
		c.Disconnect(0)
		return errors.New("connect: timed out")
	case <-ctx.Done():
		c.Disconnect(0)
		return ctx.Err()
	}
	defer c.Disconnect(250)
	e.up.set(StateConnected, nil)
	e.log.Info("uplink connected", "broker", e.cfg.Broker)

	// Next blocks while the spool is empty: wake it when the connection
	// drops, so that the loss is noticed (and reported) at once.
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case err := <-lost:
			cancel(fmt.Errorf("connection lost: %w", err))
		case <-sctx.Done():
		}
	}()

	var acked uint64 // 0: from the oldest unacknowledged record
	for {
		recs, err := e.spool.Next(sctx, acked, e.cfg.Window)
		if err != nil {
			if c := context.Cause(sctx); c != nil && ctx.Err() == nil {
				return c
			}
			return err
		}
		toks := make([]paho.Token, len(recs))
		for i, r := range recs {
			payload, topic, err := e.envelope(r)
			if err != nil {
				return err
			}
			toks[i] = c.Publish(topic, 1, false, payload)
		}
		deadline := time.NewTimer(e.cfg.AckTimeout)
		for _, t := range toks {
			select {
			case <-t.Done():
				if err := t.Error(); err != nil {
					deadline.Stop()
					return fmt.Errorf("publish: %w", err)
				}
			case <-deadline.C:
				return errAckTimeout
			case <-sctx.Done():
				deadline.Stop()
				if c := context.Cause(sctx); c != nil && ctx.Err() == nil {
					return c
				}
				return ctx.Err()
			}
		}
		deadline.Stop()
		acked = recs[len(recs)-1].Seq
		if err := e.spool.Ack(acked); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		e.up.addForwarded(len(recs))
	}
}

// envelope wraps a spool record for the appliance.
func (e *Edge) envelope(r spool.Record) ([]byte, string, error) {
	if len(r.Data) < 2 {
		return nil, "", fmt.Errorf("spool record %d is malformed", r.Seq)
	}
	proto := wire.ProtoPIOT
	if r.Data[0] == kindVDGPS {
		proto = wire.ProtoVDGPS
	}
	payload, err := json.Marshal(wire.Envelope{Edge: e.id, Seq: r.Seq, RX: r.At.UnixMilli(), Body: r.Data[1:]})
	if err != nil {
		return nil, "", err
	}
	if e.device != "" {
		return payload, wire.DeviceTopic(e.cfg.Org, e.device, proto), nil
	}
	return payload, wire.Topic(e.cfg.Org, proto), nil
}
