package web

import (
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// thingEventGap is the least time between two batches of thing events
// on one stream: changes meanwhile are collected, one event per thing,
// so a chatty sensor costs a page at most four updates a second.
const thingEventGap = 250 * time.Millisecond

// maxPendingThings bounds the things one event stream remembers as
// changed between two sends; beyond it the page is told to reload.
const maxPendingThings = 1000

// thingWatch collects the ids of things whose state (value, last seen,
// alarm) changed, from core's WatchState, for one event stream. The
// callback runs on ingest's path, so it only notes the id; what the
// stream sends is read again through core as the stream's user.
type thingWatch struct {
	mu       sync.Mutex
	ids      map[core.ID]struct{}
	overflow bool
	ready    chan struct{}
	stop     func()
	last     time.Time // when the last batch was taken
}

// watchThings follows state changes and, for settings that show as
// state (a switch turned from another page, an alarm set through
// Grafana's webhook), core's change events of things too.
func (s *Server) watchThings() *thingWatch {
	tw := &thingWatch{ids: map[core.ID]struct{}{}, ready: make(chan struct{}, 1)}
	stopState := s.deps.Core.WatchState(tw.note)
	stopEvents := s.deps.Core.Subscribe(func(e core.Event) {
		if e.Kind == core.ThingChanged {
			tw.note(e.ID)
		}
	})
	tw.stop = func() { stopState(); stopEvents() }
	return tw
}

// note remembers that a thing changed; it never blocks.
func (tw *thingWatch) note(id core.ID) {
	tw.mu.Lock()
	if len(tw.ids) < maxPendingThings {
		tw.ids[id] = struct{}{}
	} else {
		tw.overflow = true
	}
	tw.mu.Unlock()
	select {
	case tw.ready <- struct{}{}:
	default:
	}
}

func (tw *thingWatch) take() (map[core.ID]struct{}, bool) {
	time.Sleep(time.Until(tw.last.Add(thingEventGap)))
	tw.last = time.Now()
	tw.mu.Lock()
	defer tw.mu.Unlock()
	ids, over := tw.ids, tw.overflow
	tw.ids, tw.overflow = map[core.ID]struct{}{}, false
	return ids, over
}

// thingState is the data of a "thing" event: what the pages show of a
// thing's state, formatted as the templates format it.
type thingState struct {
	ID          string `json:"id"`
	Value       string `json:"value"`
	LastSeen    string `json:"lastSeen"`
	LastSeenAbs string `json:"lastSeenAbs"`
	LastSeenISO string `json:"lastSeenIso"`
	Alarm       bool   `json:"alarm"`
}

// thingEvents are the events for the changed things the actor may read
// now, asked of core (Thing) one by one as every page does; a thing the
// actor may not see is never mentioned.
func (s *Server) thingEvents(a core.Actor, tw *thingWatch) string {
	ids, over := tw.take()
	if over {
		return "event: change\ndata: {}\n\n"
	}
	var b strings.Builder
	now := time.Now()
	for id := range ids {
		t, err := s.deps.Core.Thing(a, id)
		if err != nil {
			continue
		}
		raw, err := json.Marshal(thingState{
			ID: t.ID.Hex(), Value: thingValue(t), LastSeen: ago(t.LastSeen, now),
			LastSeenAbs: abstime(t.LastSeen), LastSeenISO: isotime(t.LastSeen), Alarm: t.AlarmActive,
		})
		if err != nil {
			continue
		}
		b.WriteString("event: thing\ndata: ")
		b.Write(raw)
		b.WriteString("\n\n")
	}
	return b.String()
}
