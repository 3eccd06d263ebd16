package monitor

import (
	"container/heap"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// deadlines is a min-heap of when each watched thing is next due; the
// monitor keeps one timer set to its earliest entry. Entries may be
// early (the thing reported since): the thing is re-read when due and
// pushed back, so ingest never has to touch the heap.
type deadlines struct {
	items []*deadline
	byID  map[core.ID]*deadline
}

type deadline struct {
	id    core.ID
	at    time.Time
	index int
}

func newDeadlines() *deadlines { return &deadlines{byID: map[core.ID]*deadline{}} }

func (d *deadlines) Len() int           { return len(d.items) }
func (d *deadlines) Less(i, j int) bool { return d.items[i].at.Before(d.items[j].at) }
func (d *deadlines) Swap(i, j int) {
	d.items[i], d.items[j] = d.items[j], d.items[i]
	d.items[i].index, d.items[j].index = i, j
}
func (d *deadlines) Push(x any) {
	e := x.(*deadline)
	e.index = len(d.items)
	d.items = append(d.items, e)
}
func (d *deadlines) Pop() any {
	n := len(d.items) - 1
	e := d.items[n]
	d.items[n] = nil
	d.items = d.items[:n]
	e.index = -1
	return e
}

// set adds or moves a thing's deadline.
func (d *deadlines) set(id core.ID, at time.Time) {
	if e, ok := d.byID[id]; ok {
		e.at = at
		heap.Fix(d, e.index)
		return
	}
	e := &deadline{id: id, at: at}
	d.byID[id] = e
	heap.Push(d, e)
}

// remove forgets a thing.
func (d *deadlines) remove(id core.ID) {
	if e, ok := d.byID[id]; ok {
		heap.Remove(d, e.index)
		delete(d.byID, id)
	}
}

// next returns the earliest deadline.
func (d *deadlines) next() (time.Time, bool) {
	if len(d.items) == 0 {
		return time.Time{}, false
	}
	return d.items[0].at, true
}

// popDue removes and returns the things due at or before now.
func (d *deadlines) popDue(now time.Time) []core.ID {
	var due []core.ID
	for len(d.items) > 0 && !d.items[0].at.After(now) {
		e := heap.Pop(d).(*deadline)
		delete(d.byID, e.id)
		due = append(due, e.id)
	}
	return due
}
