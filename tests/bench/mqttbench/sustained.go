package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sustainedResult is the appliance under the -things load for
// -sustained: does history keep pace with what it acknowledges, and at
// what memory.
type sustainedResult struct {
	Things     int     `json:"things"`
	Publishers int     `json:"publishers"`
	DurationS  float64 `json:"duration_s"`
	Acked      int64   `json:"acked"`
	AckedRate  float64 `json:"acked_msgs_per_s"`
	// StoredRate is the acknowledged readings over the time from the
	// first publish until the last of them was in history.
	StoredRate float64 `json:"stored_msgs_per_s"`
	CatchUpS   float64 `json:"catch_up_s"` // from the last PUBACK until history had them all
	// MaxBacklog is the most journal records not yet in history seen
	// while publishing (sampled every second: a scrape of 1 000 things costs the appliance a few ms).
	MaxBacklog int64   `json:"max_backlog"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	Complete   bool    `json:"complete"` // every acknowledged reading reached history
	// Verified is how many things were checked after the run: state
	// shows the last acknowledged value, history each value once, in
	// order; VerifyError says what was wrong.
	Verified    int    `json:"verified"`
	VerifyError string `json:"verify_error,omitempty"`
}

// sustainedCase publishes QoS 1 over the -things things for -sustained
// and follows the appliance's own counters: journal records appended
// (acknowledged) and history points written.
func sustainedCase(ctx context.Context, o options, s *server, res *brokerResults, logf func(string, ...any)) error {
	ks, err := s.manyThings(ctx, o.things, logf)
	if err != nil {
		return err
	}
	token, err := os.ReadFile(filepath.Join(s.dataDir, "metrics-token"))
	if err != nil {
		return fmt.Errorf("metrics token: %w", err)
	}
	m := &meter{url: s.api.url + "/metrics", token: strings.TrimSpace(string(token)), hc: s.api.hc, pid: s.pidString()}
	cs, _, err := connectAll(s, o.thingsPubs, "sustained")
	if err != nil {
		return err
	}
	defer disconnectAll(cs)
	_, _ = waitIdle(s.pidString(), 30*time.Second)
	if o.load.quietWait > 0 {
		waitQuiet(s.pidString(), o.load.quietCores, o.load.quietWait)
	}
	// The points of the cases before must be in history first, or the
	// run would count them as its own and stop waiting too early.
	base, err := m.caughtUp(ctx, time.Minute)
	if err != nil {
		return err
	}
	r := sustainedResult{Things: o.things, Publishers: o.thingsPubs}
	var mu sync.Mutex
	sampling, stop := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-sampling.Done():
				return
			case <-t.C:
			}
			c, err := m.counters()
			rss := m.rssMB()
			mu.Lock()
			if err == nil {
				r.MaxBacklog = max(r.MaxBacklog, (c.appended-base.appended)-(c.written-base.written))
			}
			r.PeakRSSMB = max(r.PeakRSSMB, rss)
			mu.Unlock()
		}
	}()
	profiled := make(chan error, 1)
	if o.profile != "" {
		go func() { profiled <- s.cpuProfile(ctx, max(o.sustained-2*time.Second, time.Second), o.profile) }()
	} else {
		profiled <- nil
	}
	before := make([]int64, len(ks))
	for j, k := range ks {
		before[j] = s.vals[k]
	}
	start := time.Now()
	ph, err := burst(ctx, s, cs, spread(ks, o.thingsPubs), 1, 0, start.Add(o.sustained), nil, o.load)
	acked := time.Now()
	if err != nil {
		stop()
		<-sampled
		return err
	}
	r.DurationS, r.Acked = ph.elapsed.Seconds(), ph.done
	r.AckedRate = float64(ph.done) / ph.elapsed.Seconds()
	deadline := acked.Add(5 * time.Minute)
	for {
		c, err := m.counters()
		if err == nil && c.written-base.written >= ph.done {
			r.Complete = true
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	done := time.Now()
	stop()
	<-sampled
	if err := <-profiled; err != nil {
		logf("%s: no CPU profile: %v", s.name, err)
	} else if o.profile != "" {
		logf("%s: CPU profile of the sustained run in %s", s.name, o.profile)
	}
	r.CatchUpS = done.Sub(acked).Seconds()
	r.StoredRate = float64(ph.done) / done.Sub(start).Seconds()
	t0 := time.Now()
	r.Verified, err = s.verifyThings(ctx, ks, before, start.Unix()-1)
	if err != nil {
		r.VerifyError = err.Error()
	}
	logf("%s: state and history of %d things checked in %.1f s: %v", s.name, r.Verified, time.Since(t0).Seconds(), err)
	res.Sustained = append(res.Sustained, r)
	logf("%s: sustained %s, %d pubs over %d things: %0.f acked/s, %.0f stored/s (%.2f ×), history caught up %.1f s after the last PUBACK, backlog max %d, peak RSS %.0f MB, complete %v",
		s.name, o.sustained, o.thingsPubs, o.things, r.AckedRate, r.StoredRate, r.StoredRate/r.AckedRate, r.CatchUpS, r.MaxBacklog, r.PeakRSSMB, r.Complete)
	return nil
}

// meter reads the appliance's counters and memory.
type meter struct {
	url, token string
	hc         *http.Client
	pid        string
}

type counters struct{ appended, written int64 }

// counters scrapes the journal records appended (each acknowledged
// message) and the history points written.
func (m *meter) counters() (counters, error) {
	req, err := http.NewRequest(http.MethodGet, m.url, nil)
	if err != nil {
		return counters{}, err
	}
	req.Header.Set("Authorization", "Bearer "+m.token)
	resp, err := m.hc.Do(req)
	if err != nil {
		return counters{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return counters{}, fmt.Errorf("/metrics: HTTP %d", resp.StatusCode)
	}
	var c counters
	var seen int
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, `piot_ingest_journal_records_total{result="appended"} `):
			dst = &c.appended
		case strings.HasPrefix(line, "piot_history_points_written_total "):
			dst = &c.written
		default:
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return counters{}, fmt.Errorf("/metrics: %q: %w", line, err)
		}
		*dst = int64(v)
		seen++
	}
	if seen != 2 {
		return counters{}, fmt.Errorf("/metrics: journal or history counter missing")
	}
	return c, sc.Err()
}

// rssMB is the appliance's resident memory now.
func (m *meter) rssMB() float64 {
	b, err := os.ReadFile("/proc/" + m.pid + "/status")
	if err != nil {
		return 0
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// cpuProfile saves a CPU profile of the appliance over d.
func (s *server) cpuProfile(ctx context.Context, d time.Duration, file string) error {
	if s.debugAddr == "" {
		return fmt.Errorf("the appliance runs without --debug-addr")
	}
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.debugAddr, int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: d + 30*time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// caughtUp waits until the appliance's journal and history counters stand
// still for 2.5 s (at most limit) and returns them.
func (m *meter) caughtUp(ctx context.Context, limit time.Duration) (counters, error) {
	last, err := m.counters()
	if err != nil {
		return last, err
	}
	deadline := time.Now().Add(limit)
	for still := 0; still < 5 && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		c, err := m.counters()
		if err != nil {
			return c, err
		}
		if c == last {
			still++
		} else {
			still = 0
		}
		last = c
	}
	return last, nil
}
