package ratelimit

import "time"

// table is the bounded map under every limit here: at most max keys, so
// that the number of addresses or device ids a client can make up never
// grows memory. Callers hold their own lock.
type table[E any] struct {
	max     int
	entries map[string]*E
	// stale reports whether an entry holds nothing any more at now, so
	// that forgetting it changes no answer.
	stale func(e *E, now time.Time) bool
}

func newTable[E any](max int, stale func(*E, time.Time) bool) table[E] {
	return table[E]{max: max, entries: map[string]*E{}, stale: stale}
}

// lookup returns key's entry, or nil.
func (t *table[E]) lookup(key string) *E { return t.entries[key] }

// full reports whether a new key would need a sweep to get in.
func (t *table[E]) full() bool { return len(t.entries) >= t.max }

// admit adds a zero entry for key and returns it. When the table is full
// it first sweeps the stale entries; if it is still full it returns nil
// and the caller decides what a newcomer gets.
func (t *table[E]) admit(key string, now time.Time) *E {
	if t.full() {
		for k, e := range t.entries {
			if t.stale(e, now) {
				delete(t.entries, k)
			}
		}
		if t.full() {
			return nil
		}
	}
	e := new(E)
	t.entries[key] = e
	return e
}
