package backend

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
	"github.com/piot-appliance/piot/tui"
)

// History limits.
const (
	DefaultHistoryPoints = 60
	MaxHistoryPoints     = 1000
	DefaultHistorySpan   = 24 * time.Hour
	MaxHistorySpan       = 366 * 24 * time.Hour
)

// History implements tui.History on the history store; core decides who
// may see a thing.
type History struct {
	core  *core.Core
	store *history.Store
	now   func() time.Time
}

// NewHistory builds the adapter; now nil means time.Now.
func NewHistory(c *core.Core, st *history.Store, now func() time.Time) *History {
	if now == nil {
		now = time.Now
	}
	return &History{core: c, store: st, now: now}
}

// Recent implements tui.History: the series kind of the thing over span
// ending now, averaged into at most points buckets (oldest first);
// buckets without a numeric value are left out.
func (h *History) Recent(ctx context.Context, a core.Actor, thing core.ID, kind string, span time.Duration, points int) ([]float64, error) {
	var rs []history.Reading
	err := h.core.ReadThingHistory(a, thing, func(core.Thing) error {
		if !history.ValidKind(kind) || kind == history.KindLocation {
			return core.NewError(core.CodeBadInput, "unknown numeric series "+strconv.Quote(kind))
		}
		if points <= 0 {
			points = DefaultHistoryPoints
		}
		points = min(points, MaxHistoryPoints)
		if span <= 0 {
			span = DefaultHistorySpan
		}
		span = min(span, MaxHistorySpan)
		to := h.now().Unix()
		secs := max(int64(span/time.Second), 1)
		step := max((secs+int64(points)-1)/int64(points), 1)
		// Buckets are aligned to the epoch, so the span may touch points+1 of
		// them; ask for all and keep the newest (first would keep the oldest).
		var err error
		rs, err = h.store.Query(ctx, thing, kind, to-secs, to, step, history.FnAvg, 0)
		if errors.Is(err, history.ErrBadQuery) {
			return core.NewError(core.CodeBadInput, "invalid history query")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]float64, 0, len(rs))
	for _, r := range rs {
		v, err := strconv.ParseFloat(r.Value, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		out = append(out, v)
	}
	if len(out) > points {
		out = out[len(out)-points:]
	}
	return out, nil
}

// Series implements tui.History with the readings requests the API and
// the web manager use (history.NewRequest, StepFor, Run): min, max and
// avg per step for numeric series, and the raw readings of the range.
func (h *History) Series(ctx context.Context, a core.Actor, thing core.ID, q tui.SeriesQuery) (tui.Series, error) {
	var out tui.Series
	err := h.core.ReadThingHistory(a, thing, func(t core.Thing) error {
		from, to := q.From.Unix(), q.To.Unix()
		if q.To.IsZero() {
			to = h.now().Unix()
		}
		if from >= to {
			return core.NewError(core.CodeBadInput, "the range must end after it starts")
		}
		from = max(from, to-int64(MaxHistorySpan/time.Second), 0)
		steps := q.Steps
		if steps <= 0 {
			steps = DefaultHistoryPoints
		}
		step := history.StepFor(to-from, min(steps, MaxHistoryPoints))
		request := func(step int64, fn history.Fn) ([]history.Reading, error) {
			first := int64(history.MaxReadings)
			r, err := history.NewRequest(t.Type, &q.Kind, &from, &to, &step, &fn, &first)
			if err != nil {
				return nil, core.NewError(core.CodeBadInput, err.Error())
			}
			rs, err := h.store.Run(ctx, thing, r)
			if errors.Is(err, history.ErrBadQuery) {
				return nil, core.NewError(core.CodeBadInput, "invalid history query")
			}
			return rs, err
		}
		raw, err := request(0, history.FnAvg)
		if err != nil {
			return err
		}
		out.Kind, out.Step = q.Kind, time.Duration(step)*time.Second
		out.Truncated = len(raw) >= history.MaxReadings
		for _, r := range raw {
			out.Readings = append(out.Readings, tui.SeriesReading{Time: time.Unix(r.TS, 0), Value: r.Value})
		}
		if q.Kind == history.KindLocation {
			return nil
		}
		var agg [3][]history.Reading
		for i, fn := range []history.Fn{history.FnMin, history.FnMax, history.FnAvg} {
			if agg[i], err = request(step, fn); err != nil {
				return err
			}
		}
		out.Steps = mergeSteps(agg[0], agg[1], agg[2])
		return nil
	})
	return out, err
}

// mergeSteps joins the min, max and avg answers by step start; the three
// skip the same empty steps, but a step is only kept when all three have
// a number.
func mergeSteps(mins, maxs, avgs []history.Reading) []tui.SeriesStep {
	num := func(rs []history.Reading) map[int64]float64 {
		m := make(map[int64]float64, len(rs))
		for _, r := range rs {
			if v, err := strconv.ParseFloat(r.Value, 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
				m[r.TS] = v
			}
		}
		return m
	}
	lo, hi := num(mins), num(maxs)
	var out []tui.SeriesStep
	for _, r := range avgs {
		v, err := strconv.ParseFloat(r.Value, 64)
		l, okl := lo[r.TS]
		u, oku := hi[r.TS]
		if err != nil || !okl || !oku || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		out = append(out, tui.SeriesStep{Start: time.Unix(r.TS, 0), Min: l, Max: u, Avg: v})
	}
	return out
}
