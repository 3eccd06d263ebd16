package history

import (
	"context"
	"fmt"
	"time"
)

// Enforce applies the retention: it drops partitions whose day ended
// longer ago than Retention and then, while the estimated size exceeds
// MaxBytes, the oldest partitions (never the newest one). It returns the
// names of the dropped partitions. Ingest calls it periodically.
func (s *Store) Enforce(ctx context.Context) ([]string, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	now := s.now().Unix()
	// Hours also settle while no points arrive.
	if err := s.settle(ctx, floorDiv(now, hourSecs)); err != nil {
		return nil, err
	}
	cutoff := now - int64(s.cfg.Retention/time.Second)
	s.pmu.RLock()
	days := s.sortedDaysLocked()
	var total int64
	for _, p := range s.parts {
		total += p.bytes
	}
	s.pmu.RUnlock()

	var dropped []string
	for i, d := range days {
		p, _ := s.existing(d)
		reason := ""
		switch {
		case (d+1)*daySecs <= cutoff:
			reason = "age"
		case s.cfg.MaxBytes > 0 && total > s.cfg.MaxBytes && i < len(days)-1:
			reason = "size"
		default:
			return dropped, nil
		}
		if err := s.db.Collection(p.name).Drop(ctx); err != nil {
			return dropped, fmt.Errorf("history: drop %s: %w", p.name, err)
		}
		s.pmu.Lock()
		delete(s.parts, d)
		s.pmu.Unlock()
		total -= p.bytes
		s.droppedDays = max(s.droppedDays, d)
		for k := range s.cache {
			if floorDiv(k.hour*hourSecs, daySecs) <= d {
				delete(s.cache, k)
			}
		}
		for k := range s.pending {
			if floorDiv(k.hour*hourSecs, daySecs) <= d {
				delete(s.pending, k)
			}
		}
		s.dropped.Add(1)
		dropped = append(dropped, p.name)
		s.log.Info("history partition dropped", "partition", p.name, "reason", reason,
			"points", p.points, "estimated_bytes", p.bytes, "retention", s.cfg.Retention, "max_bytes", s.cfg.MaxBytes)
	}
	return dropped, nil
}
