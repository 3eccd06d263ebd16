package backend

import (
	"context"
	"sync"

	"github.com/piot-appliance/piot/tui"
)

// Service is a supervised service, as the appliance's supervisor runs
// it; declared here so that the console's backend does not depend on the
// composition root.
type Service interface {
	Name() string
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// failer is a service that can fail while running (the supervisor's
// Failer).
type failer interface {
	Err() <-chan error
}

// Probe reports how a running service is doing beyond having started:
// the store answering its pings, the broker's listeners bound. It is only
// called while the service runs (after its Start returned and before its
// Stop is called), so it may read what Start set up. It must be cheap.
type Probe func() (ok bool, detail string)

// Tracker records the life of the supervised services for the console's
// Health: wrap each service with Track before handing it to the
// supervisor, which knows only whether all of them started.
type Tracker struct {
	mu       sync.RWMutex
	services []*tracked
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{} }

type state int

const (
	notStarted state = iota
	starting
	running
	startFailed
	stopping
	stopped
)

type tracked struct {
	t     *Tracker
	inner Service
	probe Probe

	// guarded by t.mu
	state state
	err   error
}

// trackedFailer keeps the supervisor's Failer visible through the
// wrapper.
type trackedFailer struct{ *tracked }

func (f trackedFailer) Err() <-chan error { return f.inner.(failer).Err() }

// Track wraps s so that its state is recorded; probe may be nil.
func (t *Tracker) Track(s Service, probe Probe) Service {
	w := &tracked{t: t, inner: s, probe: probe}
	t.mu.Lock()
	t.services = append(t.services, w)
	t.mu.Unlock()
	if _, ok := s.(failer); ok {
		return trackedFailer{w}
	}
	return w
}

func (w *tracked) set(s state, err error) {
	w.t.mu.Lock()
	w.state, w.err = s, err
	w.t.mu.Unlock()
}

func (w *tracked) Name() string { return w.inner.Name() }

func (w *tracked) Start(ctx context.Context) error {
	w.set(starting, nil)
	if err := w.inner.Start(ctx); err != nil {
		w.set(startFailed, err)
		return err
	}
	w.set(running, nil)
	return nil
}

func (w *tracked) Stop(ctx context.Context) error {
	w.set(stopping, nil)
	err := w.inner.Stop(ctx)
	w.set(stopped, err)
	return err
}

// Running reports whether the named service has started and is not being
// stopped. Reading a service's fields after Running returned true is
// safe: its Start has returned before.
func (t *Tracker) Running(name string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, w := range t.services {
		if w.inner.Name() == name {
			return w.state == running
		}
	}
	return false
}

// Services implements tui.Health.
func (t *Tracker) Services() []tui.ServiceStatus {
	type item struct {
		w     *tracked
		state state
		err   error
	}
	t.mu.RLock()
	items := make([]item, len(t.services))
	for i, w := range t.services {
		items[i] = item{w, w.state, w.err}
	}
	t.mu.RUnlock()

	out := make([]tui.ServiceStatus, 0, len(items))
	for _, it := range items {
		st := tui.ServiceStatus{Name: it.w.inner.Name()}
		switch it.state {
		case notStarted:
			st.Detail = "not started"
		case starting:
			st.Detail = "starting"
		case running:
			st.OK, st.Detail = true, "running"
			if it.w.probe != nil {
				st.OK, st.Detail = it.w.probe()
			}
		case startFailed:
			st.Detail = "failed to start: " + it.err.Error()
		case stopping:
			st.Detail = "stopping"
		case stopped:
			st.Detail = "stopped"
			if it.err != nil {
				st.Detail = "stopped: " + it.err.Error()
			}
		}
		out = append(out, st)
	}
	return out
}
