package backend

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
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
