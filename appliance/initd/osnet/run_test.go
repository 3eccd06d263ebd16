package osnet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeNet records what the runner does and answers from scripts.
type fakeNet struct {
	mu       sync.Mutex
	events   []string
	acquires []func() (Lease, error)
	renews   []func(ctx context.Context, l Lease) (Lease, error)
	applyErr []error
}

func (f *fakeNet) log(format string, a ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, fmt.Sprintf(format, a...))
}

func (f *fakeNet) snapshot() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.events)
}

func pop[T any](f *fakeNet, s *[]T) (T, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var zero T
	if len(*s) == 0 {
		return zero, false
	}
	v := (*s)[0]
	*s = (*s)[1:]
	return v, true
}

func shortLease(addr string, d time.Duration) Lease {
	return Lease{
		Address: netip.MustParsePrefix(addr), Gateway: netip.MustParseAddr("192.0.2.1"),
		Duration: d, T1: d / 2, T2: d * 7 / 8, Acquired: time.Now(),
	}
}

func (f *fakeNet) runner(t *testing.T, onLease func(Lease)) *runner {
	return &runner{
		log:    testLogger(t),
		ifname: "eth0",
		acquire: func(ctx context.Context) (Lease, error) {
			a, ok := pop(f, &f.acquires)
			if !ok {
				<-ctx.Done()
				return Lease{}, ctx.Err()
			}
			l, err := a()
			f.log("acquire %v %v", l.Address, err)
			return l, err
		},
		renew: func(ctx context.Context, l Lease) (Lease, error) {
			r, ok := pop(f, &f.renews)
			if !ok {
				<-ctx.Done()
				return Lease{}, ctx.Err()
			}
			nl, err := r(ctx, l)
			f.log("renew %v -> %v %v", l.Address, nl.Address, err != nil)
			return nl, err
		},
		apply: func(l Lease) error {
			err, _ := pop(f, &f.applyErr)
			f.log("apply %v %v", l.Address, err)
			return err
		},
		unconfigure: func() error { f.log("unconfigure"); return nil },
		onLease:     onLease,
		retry:       10 * time.Millisecond,
		maxRetry:    40 * time.Millisecond,
	}
}

func TestRunLifecycle(t *testing.T) {
	const d = 100 * time.Millisecond
	f := &fakeNet{
		acquires: []func() (Lease, error){
			func() (Lease, error) { return Lease{}, errors.New("no carrier") },
			func() (Lease, error) { return shortLease("192.0.2.15/24", d), nil },
			func() (Lease, error) { return shortLease("192.0.2.16/24", d), nil },
		},
		applyErr: []error{nil, nil, nil, nil},
		renews: []func(context.Context, Lease) (Lease, error){
			// Same address: a quiet renewal.
			func(context.Context, Lease) (Lease, error) { return shortLease("192.0.2.15/24", d), nil },
			// The server moves the client: a change.
			func(context.Context, Lease) (Lease, error) { return shortLease("192.0.2.20/24", d), nil },
			// Refused: the address must go before acquiring anew.
			func(context.Context, Lease) (Lease, error) { return Lease{}, ErrNAK },
		},
	}
	var mu sync.Mutex
	var got []netip.Prefix
	done := make(chan struct{})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	r := f.runner(t, func(l Lease) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, l.Address)
		if len(got) == 4 {
			close(done)
		}
	})
	errc := make(chan error, 1)
	go func() { errc <- r.run(ctx) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("timed out; events: %q", f.snapshot())
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("run returned %v", err)
	}
	want := []string{
		"acquire invalid Prefix no carrier",
		"acquire 192.0.2.15/24 <nil>",
		"apply 192.0.2.15/24 <nil>",
		"renew 192.0.2.15/24 -> 192.0.2.15/24 false",
		"apply 192.0.2.15/24 <nil>",
		"renew 192.0.2.15/24 -> 192.0.2.20/24 false",
		"apply 192.0.2.20/24 <nil>",
		"renew 192.0.2.20/24 -> invalid Prefix true",
		"unconfigure",
		"acquire 192.0.2.16/24 <nil>",
		"apply 192.0.2.16/24 <nil>",
	}
	if ev := f.snapshot(); !slices.Equal(ev[:min(len(ev), len(want))], want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(ev, "\n"), strings.Join(want, "\n"))
	}
	mu.Lock()
	defer mu.Unlock()
	wantLeases := []netip.Prefix{
		netip.MustParsePrefix("192.0.2.15/24"), netip.MustParsePrefix("192.0.2.15/24"),
		netip.MustParsePrefix("192.0.2.20/24"), netip.MustParsePrefix("192.0.2.16/24"),
	}
	if !slices.Equal(got, wantLeases) {
		t.Errorf("onLease got %v, want %v", got, wantLeases)
	}
}

func TestRunRenewsAtT1AndExpires(t *testing.T) {
	const d = 600 * time.Millisecond
	var (
		renewAt  time.Time
		deadline time.Time
		acquired = make(chan Lease, 2)
	)
	f := &fakeNet{
		acquires: []func() (Lease, error){
			func() (Lease, error) { l := shortLease("192.0.2.15/24", d); acquired <- l; return l, nil },
			func() (Lease, error) { l := shortLease("192.0.2.15/24", d); acquired <- l; return l, nil },
		},
		renews: []func(context.Context, Lease) (Lease, error){
			// No server answers: renewal lasts until the lease expires.
			func(ctx context.Context, _ Lease) (Lease, error) {
				renewAt = time.Now()
				deadline, _ = ctx.Deadline()
				<-ctx.Done()
				return Lease{}, ctx.Err()
			},
		},
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	r := f.runner(t, nil)
	go func() { errc <- r.run(ctx) }()
	first := <-acquired
	select {
	case <-acquired:
	case <-ctx.Done():
		t.Fatalf("no re-acquisition after expiry; events %q", f.snapshot())
	}
	cancel()
	<-errc
	if el := renewAt.Sub(first.Acquired); el < d/2 || el > d/2+250*time.Millisecond {
		t.Errorf("renewal began %v after acquisition, want T1 = %v", el, d/2)
	}
	if !deadline.Equal(first.Expiry()) {
		t.Errorf("renewal bounded by %v, want expiry %v", deadline, first.Expiry())
	}
	if ev := f.snapshot(); !slices.Contains(ev, "unconfigure") {
		t.Errorf("expired lease not unconfigured: %q", ev)
	}
}

func TestRunRetriesApply(t *testing.T) {
	f := &fakeNet{
		acquires: []func() (Lease, error){
			func() (Lease, error) { return shortLease("192.0.2.15/24", time.Hour), nil },
			func() (Lease, error) { return shortLease("192.0.2.15/24", time.Hour), nil },
		},
		applyErr: []error{errors.New("EPERM")},
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	leased := make(chan struct{})
	r := f.runner(t, func(Lease) { close(leased) })
	errc := make(chan error, 1)
	go func() { errc <- r.run(ctx) }()
	select {
	case <-leased:
	case <-ctx.Done():
		t.Fatalf("lease never applied; events %q", f.snapshot())
	}
	cancel()
	<-errc
	if n := len(f.snapshot()); n != 4 {
		t.Errorf("events %q: want acquire, failed apply, acquire, apply", f.snapshot())
	}
}
