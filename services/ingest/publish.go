package ingest

import (
	"context"
	"sync/atomic"
)

// Deliverer hands a message the ingest has journaled to the broker's live
// subscribers without journaling it again (broker.PublishIngested).
type Deliverer func(ctx context.Context, topic string, payload []byte) error

// deliverer is set once the broker exists; the broker needs the ingest's
// hook first, so it cannot be a constructor argument.
type deliverer struct{ fn atomic.Pointer[Deliverer] }

// SetDeliverer sets where Publish delivers live; nil delivers nothing.
func (i *Ingest) SetDeliverer(d Deliverer) {
	if d == nil {
		i.deliver.fn.Store(nil)
		return
	}
	i.deliver.fn.Store(&d)
}

// Publish is how messages that do not come from an MQTT client enter the
// appliance (the device adapters' packets, the relay's marks): they are
// journaled with their measurement time, all or none, durable on return,
// and then delivered to live subscribers. A failed live delivery is
// logged and not returned: the messages are stored, and a device that
// sent them again would store them twice.
func (i *Ingest) Publish(ctx context.Context, msgs []Message) error {
	if err := i.SubmitAll(msgs); err != nil {
		return err
	}
	d := i.deliver.fn.Load()
	if d == nil {
		return nil
	}
	for _, m := range msgs {
		if IsMark(m.Topic) {
			continue // bookkeeping, never delivered
		}
		if err := (*d)(ctx, m.Topic, m.Payload); err != nil {
			i.log.Warn("live delivery failed", "topic", m.Topic, "err", err)
			break
		}
	}
	return nil
}
