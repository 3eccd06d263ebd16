package broker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFollow(t *testing.T) {
	tn := newTenant(t, "follow")
	b := startBroker(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	for _, f := range []string{"", "a/#/b", "a/b#", "$share/g/a", "a\x00b"} {
		if _, err := b.Follow(ctx, f, 0); !errors.Is(err, ErrBadFilter) {
			t.Errorf("Follow(%q): %v, want ErrBadFilter", f, err)
		}
	}

	// Retained $SYS topics reach a $SYS filter but never a top-level
	// wildcard.
	sys, err := b.Follow(ctx, "$SYS/#", 1000)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-sys:
		if !strings.HasPrefix(m.Topic, "$SYS/") || !m.Retained {
			t.Errorf("$SYS follower got %+v", m)
		}
	case <-time.After(2 * time.Second):
		t.Error("no retained $SYS message")
	}
	all, err := b.Follow(ctx, "#", 0)
	if err != nil {
		t.Fatal(err)
	}
	mine, err := b.Follow(ctx, tn.topic("#"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.FollowStats().Active; got != 3 {
		t.Errorf("active followers %d", got)
	}

	c, err := dial5(t, b.addr(ListenerTCP), tn.username, tn.password, v5opts{})
	if err != nil {
		t.Fatal(err)
	}
	c.publish(t, tn.topic("x"), "hello", false)
	for name, ch := range map[string]<-chan Message{"#": all, "org": mine} {
		deadline := time.After(5 * time.Second)
	wait:
		for {
			select {
			case m := <-ch:
				if strings.HasPrefix(m.Topic, "$") {
					t.Errorf("%s follower got %s", name, m.Topic)
				}
				if m.Topic == tn.topic("x") && string(m.Payload) == "hello" && m.QoS == 1 {
					break wait
				}
			case <-deadline:
				t.Fatalf("%s follower: no message", name)
			}
		}
	}

	// Stopping the broker closes every follower.
	b.stop(t)
	for _, ch := range []<-chan Message{sys, all, mine} {
		deadline := time.After(3 * time.Second)
	drain:
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					break drain
				}
			case <-deadline:
				t.Fatal("follower not closed after Stop")
			}
		}
	}
	eventually(t, time.Second, "no followers", func() bool { return b.FollowStats().Active == 0 })
	if _, err := b.Follow(ctx, "#", 0); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Follow after Stop: %v", err)
	}
}
