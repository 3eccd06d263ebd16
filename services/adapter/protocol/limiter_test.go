package protocol

import (
	"testing"
	"time"
)

func TestLimiterBounded(t *testing.T) {
	l := newLimiter(time.Second, 2)
	now := time.Unix(0, 0)
	if ok, _, _ := l.allow("a", now); !ok {
		t.Fatal("a")
	}
	if ok, _, _ := l.allow("b", now); !ok {
		t.Fatal("b")
	}
	if ok, _, full := l.allow("c", now); ok || !full {
		t.Fatal("c should be refused while the table is full")
	}
	now = now.Add(time.Second)
	if ok, _, _ := l.allow("c", now); !ok {
		t.Fatal("c after sweep")
	}
	if len(l.last) > 2 {
		t.Fatalf("table grew to %d", len(l.last))
	}
}
