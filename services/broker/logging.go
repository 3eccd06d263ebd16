package broker

import (
	"context"
	"log/slog"
)

// quietPackets wraps the handler given to mochi, which logs whole packets
// (payloads, passwords in CONNECT) with some warnings, e.g. for every
// refused publish. Payloads are device data and must not end up in logs,
// and one client could flood them; the message and other attributes stay.
type quietPackets struct{ slog.Handler }

// packetAttrs are the attribute keys under which mochi logs packets.
var packetAttrs = map[string]bool{"pk": true, "packet": true, "will": true}

// perMessage are mochi's warnings and errors that come once per message,
// not once per event: a subscriber whose session is full logs one for
// every publish it misses, and every publish refused by a hook (the
// ingest on a full disk) logs another. They are counted (InflightDropped,
// the ingest's journal failures) and their cause is logged once by its
// owner, so they are logged at debug level only.
var perMessage = map[string]bool{"client store quota reached": true, "publish packet error": true}

func (h quietPackets) Handle(ctx context.Context, r slog.Record) error {
	level := r.Level
	if perMessage[r.Message] && level > slog.LevelDebug {
		if level = slog.LevelDebug; !h.Handler.Enabled(ctx, level) {
			return nil
		}
	}
	out := slog.NewRecord(r.Time, level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if !packetAttrs[a.Key] {
			out.AddAttrs(a)
		}
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h quietPackets) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietPackets{h.Handler.WithAttrs(attrs)}
}

func (h quietPackets) WithGroup(name string) slog.Handler {
	return quietPackets{h.Handler.WithGroup(name)}
}
