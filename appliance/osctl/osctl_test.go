package osctl

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// recorder is init's side as the tests see it: it stores what it is asked.
type recorder struct {
	mu       sync.Mutex
	applied  []Settings
	actions  []Action
	rebootAt time.Time
}

func (r *recorder) State() State {
	return State{Settings: Settings{Hostname: "piot", Network: "dhcp", Timezone: "UTC"}, Addresses: []string{"eth0 10.0.2.15/24 (dhcp)"}, Version: "v1"}
}

func (r *recorder) Apply(_ context.Context, s Settings) error {
	if s.Hostname == "" {
		return BadInput{Err: errors.New("hostname: must have 1 to 253 characters")}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applied = append(r.applied, s)
	return nil
}

func (r *recorder) Do(a Action) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.actions = append(r.actions, a)
	return nil
}

func (r *recorder) ScheduleReboot(at time.Time) error {
	if at.Year() < 2000 && !at.IsZero() {
		return BadInput{Err: errors.New("too early")}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rebootAt = at
	return nil
}

func TestClientServerOverUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "init.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	h := &recorder{}
	done := make(chan error, 1)
	go func() { done <- Serve(ln, h) }()
	defer func() {
		ln.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	c := New(sock)
	ctx := context.Background()

	st, err := c.State(ctx)
	if err != nil || st.Settings.Hostname != "piot" || len(st.Addresses) != 1 {
		t.Fatalf("State: %+v %v", st, err)
	}
	if err := c.Apply(ctx, Settings{Hostname: "barn", Network: "dhcp", Timezone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	var bad *Error
	if err := c.Apply(ctx, Settings{}); !errors.As(err, &bad) || bad.Status != 400 || bad.Msg == "" {
		t.Fatalf("bad settings: %v, want a 400 with the reason", err)
	}
	for _, a := range []Action{Reboot, PowerOff, Restart} {
		if err := c.Do(ctx, a); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
	}
	if err := c.Do(ctx, "format-disk"); !errors.As(err, &bad) || bad.Status != 404 {
		t.Fatalf("unknown action: %v", err)
	}
	at := time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)
	if err := c.ScheduleReboot(ctx, at); err != nil {
		t.Fatal(err)
	}
	if err := c.ScheduleReboot(ctx, time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.As(err, &bad) || bad.Status != 400 {
		t.Fatalf("refused time: %v", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.applied) != 1 || h.applied[0].Hostname != "barn" || len(h.actions) != 3 || !h.rebootAt.Equal(at) {
		t.Fatalf("init saw %+v %v %v", h.applied, h.actions, h.rebootAt)
	}
}

func TestNoInitOutsideTheImage(t *testing.T) {
	t.Setenv(SocketEnv, "")
	c := FromEnv()
	if c != nil {
		t.Fatal("a client without init's socket")
	}
	if _, err := c.State(context.Background()); !errors.Is(err, ErrNoInit) {
		t.Fatalf("State: %v", err)
	}
	if err := c.Do(context.Background(), Reboot); !errors.Is(err, ErrNoInit) {
		t.Fatalf("Do: %v", err)
	}
}
