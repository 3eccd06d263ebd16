package core

import "sync"

// stateWatchers are the callbacks of WatchState.
type stateWatchers struct {
	mu   sync.RWMutex
	next int
	fns  map[int]func(ID)
}

// WatchState calls fn with the thing's id after every change of a
// thing's state (what devices report: values, last seen, alarm), outside
// core's locks, on the changing goroutine (ingest's or the monitor's), so
// fn must not block nor call back into core; it only learns that
// something changed and must read it through core's authorized calls.
// The monitor (a thing that reports again clears its alarm) and the
// web manager's live values use it. The returned function stops the
// calls.
func (c *Core) WatchState(fn func(id ID)) (cancel func()) {
	w := &c.watchers
	w.mu.Lock()
	if w.fns == nil {
		w.fns = map[int]func(ID){}
	}
	k := w.next
	w.next++
	w.fns[k] = fn
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		delete(w.fns, k)
		w.mu.Unlock()
	}
}

func (w *stateWatchers) notify(id ID) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	for _, fn := range w.fns {
		fn(id)
	}
}
