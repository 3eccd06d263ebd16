package broker

import (
	"sync"
	"sync/atomic"
	"time"
)

// Pacing: a publisher waits for a subscriber that is a little behind.
//
// A QoS 0 delivery to a subscriber whose outbound queue is half full is
// dropped (heldWriter), so that a subscriber that stops reading cannot
// hold anybody up. But a subscriber that only reads a little slower than
// a publisher writes would then lose a share of every fast stream, and
// that is most subscribers of a busy organisation: a dashboard, a bridge,
// a logger. So once QoS 0 deliveries have filled a quarter of a
// subscriber's queue (it is congested), each publisher whose messages
// reach it waits at its next publish until the queue has drained to an
// eighth. The broker then reads that publisher's next packet later, TCP
// slows the publisher down, and the subscriber gets every message.
//
// Waiting is bounded so that no subscriber can hold a publisher up:
//   - one publish waits at most PaceWait;
//   - a publisher waits at most as long as it ran since it last waited
//     (credit, capped at maxPaceCredit): a subscriber can at most halve a
//     publisher's rate, beyond that its deliveries are dropped as before;
//   - nobody waits for a subscriber whose queue made no progress for
//     paceStall (a peer that stopped reading, or a link too slow to
//     matter): its deliveries are dropped as before;
//   - only network clients wait, for the subscribers their own messages
//     reach (the link is made when a delivery is written), never
//     in-process publishers (the adapter's HTTP answers, the API).
const (
	// DefaultPaceWait is Config.PaceWait's default.
	DefaultPaceWait = 10 * time.Millisecond
	// MaxPaceWait bounds Config.PaceWait.
	MaxPaceWait = time.Second
	// maxPaceCredit bounds the waiting a publisher saves up while it is
	// not held back, so that a long quiet spell does not buy a long wait.
	maxPaceCredit = 100 * time.Millisecond
	// paceStall: a congested queue that wrote nothing for this long is
	// stalled, not slow. The queue writes in chunks of at most
	// maxWriteChunk, so a peer reading about 80 KB/s or more counts as
	// progressing. 50 ms took a subscriber reading 3 MB/s over loopback
	// for stalled: the kernel frees a socket's buffer in bursts.
	paceStall = 200 * time.Millisecond
	// maxWriteChunk bounds one write of a connection's queue.
	maxWriteChunk = 16 << 10
)

// pacer links publishers to the congested subscribers their messages
// reach, and makes them wait.
type pacer struct {
	maxWait time.Duration // 0: nobody waits
	// inline reports whether a client ID is an in-process client.
	inline func(id string) bool

	mu      sync.RWMutex           // read by every publish while any link exists
	targets map[string]*heldWriter // publisher's client ID → congested subscriber queue it feeds
	active  atomic.Int32           // len(targets): the publish path's fast check

	paced  atomic.Int64 // publishes that waited
	waited atomic.Int64 // nanoseconds they waited
}

// link records that a QoS 0 delivery from the publisher origin went to
// the congested queue w. It runs on the subscriber's write path, only
// while w is congested.
func (p *pacer) link(origin string, w *heldWriter) {
	if p.maxWait <= 0 || origin == "" {
		return
	}
	p.mu.RLock()
	cur, ok := p.targets[origin]
	p.mu.RUnlock()
	if ok && cur == w {
		return
	}
	if p.inline != nil && p.inline(origin) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.targets == nil {
		p.targets = make(map[string]*heldWriter)
	}
	p.targets[origin] = w
	p.active.Store(int32(len(p.targets)))
}

// forget drops a publisher's link (it disconnected).
func (p *pacer) forget(id string) {
	if p.active.Load() == 0 {
		return
	}
	p.unlink(id, nil)
}

// unlink drops id's link, if it is still to w (nil: any).
func (p *pacer) unlink(id string, w *heldWriter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur, ok := p.targets[id]; ok && (w == nil || cur == w) {
		delete(p.targets, id)
		p.active.Store(int32(len(p.targets)))
	}
}

// pace runs at each publish of the network client id, on its reading
// goroutine, and waits while a subscriber it feeds is congested. budget
// is the publisher connection's.
func (p *pacer) pace(id string, budget *paceBudget) {
	if p.active.Load() == 0 {
		return
	}
	p.mu.RLock()
	w := p.targets[id]
	p.mu.RUnlock()
	if w == nil {
		return
	}
	now := time.Now()
	congested, stalled := w.paceState(now)
	if !congested {
		p.unlink(id, w)
		return
	}
	if stalled {
		return
	}
	d := budget.allow(now, p.maxWait)
	if d <= 0 {
		return
	}
	waited := w.waitRoom(d)
	budget.spend(waited)
	p.paced.Add(1)
	p.waited.Add(int64(waited))
}

// paceBudget is how long one publisher may still wait: it earns as much
// as it runs unhindered, up to maxPaceCredit. Touched only by the
// connection's reading goroutine.
type paceBudget struct {
	credit time.Duration
	since  time.Time // credit counts up to this time
}

func newPaceBudget(now time.Time) paceBudget { return paceBudget{since: now} }

// allow returns how long the publisher may wait now, at most max.
func (b *paceBudget) allow(now time.Time, max time.Duration) time.Duration {
	if now.After(b.since) {
		b.credit = min(b.credit+now.Sub(b.since), maxPaceCredit)
		b.since = now
	}
	return min(b.credit, max)
}

// spend takes a wait of d off the credit; the wait itself earns nothing.
func (b *paceBudget) spend(d time.Duration) {
	b.credit = max(b.credit-d, 0)
	b.since = b.since.Add(d)
}
