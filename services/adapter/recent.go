package adapter

import (
	"context"
	"crypto/sha256"
	"net/http"
	"sync"
)

// ReasonDuplicate counts packets answered 200 but not stored again: a
// device resent its previous packet, byte for byte, because the answer
// to it was lost (a timeout, an edge adapter killed after spooling it).
const ReasonDuplicate = "duplicate"

// LastPackets remembers a digest of each device's last stored packet, so
// that a resend is acknowledged without storing its readings twice. Only
// packets whose readings carry their own time are remembered: two equal
// packets without a time are two measurements that happen to agree.
type LastPackets struct {
	mu  sync.Mutex
	max int
	m   map[string][sha256.Size]byte
}

// NewLastPackets bounds the table to max devices (0: 100000).
func NewLastPackets(max int) *LastPackets {
	if max <= 0 {
		max = DefaultMaxTracked
	}
	return &LastPackets{max: max, m: map[string][sha256.Size]byte{}}
}

// Same reports whether body is the device's last stored packet.
func (l *LastPackets) Same(device string, body []byte) bool {
	sum := sha256.Sum256(body)
	l.mu.Lock()
	defer l.mu.Unlock()
	last, ok := l.m[device]
	return ok && last == sum
}

// Stored records body as the device's last stored packet.
func (l *LastPackets) Stored(device string, body []byte) {
	sum := sha256.Sum256(body)
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.m[device]; !ok && len(l.m) >= l.max {
		for k := range l.m { // forget one device: only a resend may pass
			delete(l.m, k)
			break
		}
	}
	l.m[device] = sum
}

// AckResend answers a resent packet: 200, as its first copy was stored,
// publishing only what the source asked to publish with it (the relay's
// mark).
func AckResend(ctx context.Context, publish Publisher, src Source) Outcome {
	if len(src.With) > 0 {
		if err := publish.Publish(ctx, src.With); err != nil {
			return PublishRefused(err)
		}
	}
	return Outcome{Status: http.StatusOK, Reason: ReasonDuplicate}
}
