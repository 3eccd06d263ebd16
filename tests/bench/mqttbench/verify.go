package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
)

// verifyThings checks, after a run over things ks whose values went from
// before[j] (exclusive) to s.vals[ks[j]], that every thing's state shows
// its last value and that its history holds each of the run's values
// exactly once, in order. It returns the things checked and the first
// mismatches found.
func (s *server) verifyThings(ctx context.Context, ks []int, before []int64, from int64) (int, error) {
	const workers = 8
	var next atomic.Int64
	var mu sync.Mutex
	var bad []string
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				j := int(next.Add(1)) - 1
				if j >= len(ks) || ctx.Err() != nil {
					return
				}
				if err := s.verifyThing(ks[j], before[j], from); err != nil {
					mu.Lock()
					bad = append(bad, err.Error())
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if len(bad) > 0 {
		return len(ks), fmt.Errorf("%d of %d things wrong, e.g. %s", len(bad), len(ks), bad[0])
	}
	return len(ks), nil
}

// verifyPage is the GraphQL readings cap: a thing with more values in
// the run is read in pages.
const verifyPage = 10000

func (s *server) verifyThing(k int, before, from int64) error {
	last := s.vals[k]
	want := before + 1
	state := ""
	// Each page starts at the second the last one ended in, whose
	// readings come again: those up to the last value seen are skipped.
	seen, lastTS := before, from
	for page := 0; ; page++ {
		pageFrom := lastTS
		data, err := s.api.gql(`query($id: ID!, $from: Int, $first: Int) { thing(id: $id) { sensor { value } }
		readings(thingId: $id, from: $from, first: $first) { ts value } }`,
			map[string]any{"id": s.thingIDs[k], "from": pageFrom, "first": verifyPage})
		if err != nil {
			return fmt.Errorf("thing T%d: %w", k+1, err)
		}
		if page == 0 {
			state = str(data, "thing", "sensor", "value")
		}
		rs, _ := data["readings"].([]any)
		for j, r := range rs {
			m := r.(map[string]any)
			v, err := strconv.ParseInt(fmt.Sprint(m["value"]), 10, 64)
			ts, _ := m["ts"].(float64)
			if j == len(rs)-1 {
				lastTS = int64(ts)
			}
			if err != nil || v <= before {
				continue // a reading from before the run in the same second
			}
			if page > 0 && int64(ts) == pageFrom && v <= seen {
				continue
			}
			if v != want {
				return fmt.Errorf("thing T%d: history has %d where %d was due", k+1, v, want)
			}
			want++
		}
		seen = want - 1
		if len(rs) < verifyPage {
			break
		}
		if lastTS == pageFrom {
			return fmt.Errorf("thing T%d: more than %d readings in the second %d", k+1, verifyPage, lastTS)
		}
	}
	if state != strconv.FormatInt(last, 10) {
		return fmt.Errorf("thing T%d: state shows %q, last acknowledged %d", k+1, state, last)
	}
	if want != last+1 {
		return fmt.Errorf("thing T%d: history ends at %d, last acknowledged %d", k+1, want-1, last)
	}
	return nil
}
