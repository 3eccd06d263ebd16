package supervisor

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"
)

type rec struct {
	mu  sync.Mutex
	log []string
}

func (r *rec) add(s string) { r.mu.Lock(); r.log = append(r.log, s); r.mu.Unlock() }

type fake struct {
	name     string
	r        *rec
	startErr error
	errc     chan error
}

func (f *fake) Name() string { return f.name }
func (f *fake) Start(context.Context) error {
	f.r.add("start " + f.name)
	return f.startErr
}
func (f *fake) Stop(context.Context) error { f.r.add("stop " + f.name); return nil }
func (f *fake) Err() <-chan error          { return f.errc }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestStartInOrderStopInReverse(t *testing.T) {
	r := &rec{}
	a, b, c := &fake{name: "store", r: r}, &fake{name: "core", r: r}, &fake{name: "http", r: r}
	sup := New(quiet, time.Second, a, b, c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- sup.Run(ctx) }()
	for sup.Ready() != nil {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []string{"start store", "start core", "start http", "stop http", "stop core", "stop store"}
	if !reflect.DeepEqual(r.log, want) {
		t.Fatalf("order = %v", r.log)
	}
	if sup.Ready() == nil {
		t.Fatal("ready after stop")
	}
}

func TestStartFailureStopsStarted(t *testing.T) {
	r := &rec{}
	boom := errors.New("boom")
	sup := New(quiet, time.Second, &fake{name: "store", r: r}, &fake{name: "http", r: r, startErr: boom}, &fake{name: "never", r: r})
	err := sup.Run(context.Background())
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	want := []string{"start store", "start http", "stop store"}
	if !reflect.DeepEqual(r.log, want) {
		t.Fatalf("order = %v", r.log)
	}
}

func TestRuntimeFailureStopsAll(t *testing.T) {
	r := &rec{}
	failing := &fake{name: "http", r: r, errc: make(chan error, 1)}
	sup := New(quiet, time.Second, &fake{name: "store", r: r}, failing)
	go func() {
		for sup.Ready() != nil {
			time.Sleep(time.Millisecond)
		}
		failing.errc <- errors.New("listener died")
	}()
	err := sup.Run(context.Background())
	if err == nil || err.Error() != "http: listener died" {
		t.Fatalf("err = %v", err)
	}
	if r.log[len(r.log)-1] != "stop store" {
		t.Fatalf("order = %v", r.log)
	}
}

// A service whose errors carry its name already is not named twice
// (issue 11: "store: store: … not reachable").
func TestStartErrorNamesServiceOnce(t *testing.T) {
	for _, tc := range []struct{ err, want string }{
		{"store: mongodb://x not reachable", "store: mongodb://x not reachable"},
		{"connect: refused", "store: connect: refused"},
		{"storeroom: full", "store: storeroom: full"},
	} {
		cause := errors.New(tc.err)
		err := New(quiet, time.Second, &fake{name: "store", r: &rec{}, startErr: cause}).Run(context.Background())
		if err == nil || err.Error() != tc.want || !errors.Is(err, cause) {
			t.Errorf("start error %q: got %v, want %q", tc.err, err, tc.want)
		}
	}
}
