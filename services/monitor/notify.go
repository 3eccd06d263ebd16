package monitor

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/textproto"
	"sync"
	"time"
)

// Events named in notifications.
const (
	EventRaised  = "alarm_raised"
	EventCleared = "alarm_cleared"
)

// queueSize bounds each notification queue; beyond it notifications are
// dropped (and counted) rather than block the monitor.
const queueSize = 1024

// notification is one transition to tell about.
type notification struct {
	event string
	alarm Alarm
	at    time.Time
	// thingName is the current name on recovery (the alarm keeps the
	// name it was raised with).
	thingName string
}

func (n notification) thing() string {
	if n.thingName != "" {
		return n.thingName
	}
	return n.alarm.ThingName
}

// retryPolicy is a capped exponential backoff with jitter.
type retryPolicy struct {
	attempts int
	base     time.Duration
	max      time.Duration
}

// delay is the wait before attempt n+1 (n counts from 1): base·2^(n-1),
// capped, with the upper half jittered so many senders do not align.
func (p retryPolicy) delay(n int) time.Duration {
	d := p.base << (n - 1)
	if d > p.max || d <= 0 {
		d = p.max
	}
	return d/2 + rand.N(d/2+1)
}

// notifier owns the queues and their workers: one for e-mail, one for
// webhooks, each delivering in order so a recovery never overtakes its
// alarm on the same channel.
type notifier struct {
	m       *Monitor
	mail    chan notification
	hook    chan notification
	wg      sync.WaitGroup
	mailTry retryPolicy
	hookTry retryPolicy
	ctx     context.Context // cancelled by abort
	cancel  context.CancelFunc
	quit    chan struct{} // closed by drain
}

func newNotifier(m *Monitor) *notifier {
	return &notifier{
		m: m, mail: make(chan notification, queueSize), hook: make(chan notification, queueSize),
		mailTry: retryPolicy{attempts: 3, base: 2 * time.Second, max: 30 * time.Second},
		hookTry: retryPolicy{attempts: 5, base: time.Second, max: 30 * time.Second},
	}
}

// start runs the workers; they deliver until drain or abort.
func (n *notifier) start() {
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.quit = make(chan struct{})
	n.wg.Add(2)
	go n.work(n.mail, n.sendMail)
	go n.work(n.hook, n.sendWebhook)
}

// drain lets the workers send what is queued, then waits for them.
func (n *notifier) drain() {
	close(n.quit)
	n.wg.Wait()
	n.cancel()
}

// abort cancels deliveries in progress (and their retries).
func (n *notifier) abort() { n.cancel() }

// enqueue never blocks.
func (n *notifier) enqueue(x notification) {
	if n.m.cfg.SMTP.Enabled() {
		n.put(n.mail, x)
	}
	n.put(n.hook, x)
}

func (n *notifier) put(q chan notification, x notification) {
	select {
	case q <- x:
	default:
		n.m.stats.dropped.Add(1)
		n.m.log.Error("notification queue full, dropped", "event", x.event, "alarm", x.alarm.ID)
	}
}

func (n *notifier) work(q chan notification, send func(context.Context, notification)) {
	defer n.wg.Done()
	for {
		select {
		case x := <-q:
			send(n.ctx, x)
			continue
		default:
		}
		select {
		case x := <-q:
			send(n.ctx, x)
		case <-n.quit:
			for {
				select {
				case x := <-q:
					if n.ctx.Err() != nil {
						n.m.stats.dropped.Add(1)
						continue
					}
					send(n.ctx, x)
				default:
					return
				}
			}
		}
	}
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// retry runs fn until it succeeds, fails permanently, runs out of
// attempts or ctx ends. after, if non-zero, overrides the next delay
// (Retry-After).
func retry(ctx context.Context, p retryPolicy, onRetry func(), fn func(attempt int) (after time.Duration, err error)) error {
	var err error
	for attempt := 1; ; attempt++ {
		var after time.Duration
		after, err = fn(attempt)
		var perm permanent
		if err == nil || errors.As(err, &perm) || attempt >= p.attempts {
			return err
		}
		d := p.delay(attempt)
		if after > 0 {
			d = min(after, p.max)
		}
		onRetry()
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}

// smtpPermanent tells 5xx replies (refused for good) from 4xx (try later)
// and network errors.
func smtpPermanent(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 500
}
