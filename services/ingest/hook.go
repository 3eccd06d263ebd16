package ingest

import (
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/durable"
)

// Hook is the broker side of the ingest: a mochi hook that journals every
// publish under org/ before the broker acknowledges it.
//
// mochi calls OnPublish after the ACL check and before it sends PUBACK
// (QoS 1) or PUBREC (QoS 2) and delivers the message (server.go,
// processPublish), so a QoS 1/2 publish is acknowledged only once its
// journal record is on disk. If the journal cannot take it, a 3.1.1
// client gets no acknowledgement (the packet is dropped and the client
// resends it), a v5 client a PUBACK with reason 0x80. QoS 0 publishes are
// journaled without waiting. Add this hook after every hook that may
// reject or rewrite publishes, so that only what the broker accepts is
// journaled.
type Hook struct {
	mqtt.HookBase
	i *Ingest
}

// ID names the hook.
func (h *Hook) ID() string { return "piot-ingest" }

// Provides says which events the hook handles.
func (h *Hook) Provides(b byte) bool {
	return b == mqtt.OnPublish || b == mqtt.OnWillSent
}

// OnPublish journals a publish. For QoS > 0 the acknowledgement must wait
// until the record is durable: when the connection can hold its writes
// (the broker's listeners can) the hook hands it the record's durability
// and returns, so mochi reads on while the journal commits; otherwise it
// waits here.
func (h *Hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl != nil && cl.Net.Inline && cl.ID == durable.IngestedClient {
		return pk, nil // journaled by Submit already
	}
	var src any
	if pk.FixedHeader.Qos > 0 && cl != nil {
		src = cl // it waits for its PUBACK
	}
	d, err := h.i.submit(src, pk.TopicName, pk.Payload, time.Now())
	if err == nil && d != nil && pk.FixedHeader.Qos > 0 {
		if hw, ok := writeHolderOf(cl); ok {
			hw.HoldWrites(d)
		} else {
			err = d.Wait()
		}
	}
	if err != nil {
		return pk, refuse(cl, pk, err)
	}
	return pk, nil
}

// refuse tells mochi how to answer a publish that was not stored. MQTT 5
// QoS 1/2 publishers get a negative PUBACK: 0x97 "quota exceeded" when
// the disk is full, else 0x80. MQTT 3.1.1 has no negative PUBACK and its
// publisher would wait forever, so it is disconnected (and sends again
// when it reconnects). QoS 0 messages are dropped: mochi would deliver
// them to subscribers even with a reason code.
func refuse(cl *mqtt.Client, pk packets.Packet, err error) error {
	switch {
	case pk.FixedHeader.Qos == 0 || cl == nil || cl.Net.Inline:
		return packets.ErrRejectPacket
	case cl.Properties.ProtocolVersion == 5 && core.CodeOf(err) == core.CodeStorageFull:
		return packets.ErrQuotaExceeded
	case cl.Properties.ProtocolVersion == 5:
		return packets.ErrUnspecifiedError
	}
	cl.Stop(err)
	return packets.ErrRejectPacket
}

func writeHolderOf(cl *mqtt.Client) (durable.Holder, bool) {
	if cl == nil || cl.Net.Conn == nil {
		return nil, false
	}
	hw, ok := cl.Net.Conn.(durable.Holder)
	return hw, ok
}

// OnWillSent ingests a will message the broker has published (mochi sends
// wills without OnPublish); a device's "offline" will is how its
// availability drops.
func (h *Hook) OnWillSent(_ *mqtt.Client, pk packets.Packet) {
	_, _ = h.i.submit(nil, pk.TopicName, pk.Payload, time.Now())
}
