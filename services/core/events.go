package core

import "sync"

// EventKind says what changed.
type EventKind int

// Kinds of change. Subscribers re-read what they need from core.
const (
	OrgChanged EventKind = iota + 1 // created, renamed, credentials changed
	OrgDeleted
	ThingChanged // created or settings changed (not ingest state)
	ThingDeleted
	MembershipChanged
	UserChanged
	UserDeleted
)

// Event is one change of configuration. Old is the org name before a
// rename or deletion, so the broker can find sessions that lost rights.
type Event struct {
	Kind    EventKind
	ID      ID
	OldName string
}

// subscriber receives events in order on its own goroutine, so a slow
// subscriber never blocks a write and may call back into core.
type subscriber struct {
	fn     func(Event)
	inline bool // SubscribeInline
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []Event
	closed bool
}

func (s *subscriber) run() {
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closed {
			s.cond.Wait()
		}
		if s.closed && len(s.queue) == 0 {
			s.mu.Unlock()
			return
		}
		q := s.queue
		s.queue = nil
		s.mu.Unlock()
		for _, e := range q {
			s.fn(e)
		}
	}
}

// Subscribe calls fn for every configuration change, in order, on a
// goroutine of its own. The returned function unsubscribes.
func (c *Core) Subscribe(fn func(Event)) (cancel func()) {
	s := &subscriber{fn: fn}
	s.cond = sync.NewCond(&s.mu)
	c.subMu.Lock()
	c.subs = append(c.subs, s)
	c.subMu.Unlock()
	go s.run()
	return func() {
		c.subMu.Lock()
		for i, x := range c.subs {
			if x == s {
				c.subs = append(c.subs[:i], c.subs[i+1:]...)
				break
			}
		}
		c.subMu.Unlock()
		s.mu.Lock()
		s.closed = true
		s.cond.Signal()
		s.mu.Unlock()
	}
}

// SubscribeInline calls fn for every configuration change on the
// changing goroutine, before the change's call returns, so that what fn
// maintains is never behind a change the caller saw succeed (the ingest's
// topic index: a message sent right after enabling a thing is stored).
// fn may read from core but must not change it nor block.
func (c *Core) SubscribeInline(fn func(Event)) (cancel func()) {
	s := &subscriber{fn: fn, inline: true}
	c.subMu.Lock()
	c.subs = append(c.subs, s)
	c.subMu.Unlock()
	return func() {
		c.subMu.Lock()
		defer c.subMu.Unlock()
		for i, x := range c.subs {
			if x == s {
				c.subs = append(c.subs[:i], c.subs[i+1:]...)
				break
			}
		}
	}
}

func (c *Core) emit(e Event) {
	c.subMu.Lock()
	subs := append([]*subscriber(nil), c.subs...)
	c.subMu.Unlock()
	for _, s := range subs {
		if s.inline {
			s.fn(e)
			continue
		}
		s.mu.Lock()
		s.queue = append(s.queue, e)
		s.cond.Signal()
		s.mu.Unlock()
	}
}
