package api

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Defaults of the GraphQL load limits (Config.MaxQueries and friends).
const (
	DefaultMaxQueries       = 8
	DefaultMaxQueriesPerKey = 4
	DefaultQueryWait        = 5 * time.Second
	DefaultQueryTimeout     = 30 * time.Second
)

var (
	errBusy      = errors.New("the appliance is busy: too many GraphQL requests in progress; retry shortly")
	errTooMany   = errors.New("too many GraphQL requests in progress from this caller; wait for the earlier ones")
	errCancelled = errors.New("request cancelled")
)

// inflight bounds the GraphQL operations that run at once, in total and
// per caller. Every operation may hold store connections; bounded here,
// API load cannot take the whole connection pool from ingest and the
// broker, and one caller cannot take every slot from the others. A
// request waits up to wait for its caller's share and a slot, then is
// refused.
type inflight struct {
	slots  chan struct{}
	perKey int
	wait   time.Duration

	mu    sync.Mutex
	byKey map[string]*keySlots
}

// keySlots is one caller's share; refs counts the requests holding or
// waiting for it, so the entry goes away with the caller's last request.
type keySlots struct {
	ch   chan struct{}
	refs int
}

func newInflight(total, perKey int, wait time.Duration) *inflight {
	return &inflight{slots: make(chan struct{}, total), perKey: perKey, wait: wait, byKey: map[string]*keySlots{}}
}

// acquire takes one of key's slots and one of the total; release must be
// called when it returns nil. errTooMany means key's share stayed taken
// by its own earlier requests, errBusy that no slot freed up in time,
// errCancelled that ctx ended first.
func (f *inflight) acquire(ctx context.Context, key string) (release func(), err error) {
	if ctx.Err() != nil {
		return nil, errCancelled
	}
	f.mu.Lock()
	ks := f.byKey[key]
	if ks == nil {
		ks = &keySlots{ch: make(chan struct{}, f.perKey)}
		f.byKey[key] = ks
	}
	ks.refs++
	f.mu.Unlock()
	unref := func() {
		f.mu.Lock()
		if ks.refs--; ks.refs == 0 {
			delete(f.byKey, key)
		}
		f.mu.Unlock()
	}
	t := time.NewTimer(f.wait)
	defer t.Stop()
	select {
	case ks.ch <- struct{}{}:
	case <-t.C:
		unref()
		return nil, errTooMany
	case <-ctx.Done():
		unref()
		return nil, errCancelled
	}
	select {
	case f.slots <- struct{}{}:
		return func() { <-f.slots; <-ks.ch; unref() }, nil
	case <-t.C:
		err = errBusy
	case <-ctx.Done():
		err = errCancelled
	}
	<-ks.ch
	unref()
	return nil, err
}
