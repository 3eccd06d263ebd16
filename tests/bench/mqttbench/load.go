package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// loadConfig is what the flags set for the load.
type loadConfig struct {
	payloadSize int
	inflight    int           // QoS 1 window per publisher
	warmup      time.Duration // throughput warm-up (also sizes M when m == 0)
	caseTime    time.Duration // target measured time per throughput case when m == 0
	m           int           // messages per publisher; 0 = sized from the warm-up
	idle        time.Duration // QoS 0: stop waiting for deliveries after this long without one

	rate        float64 // latency test: messages per second in total
	ratePubs    int
	rateTime    time.Duration
	rateWarmup  time.Duration
	sampleEvery int
	pollEvery   time.Duration

	quietCores float64       // before a case, wait until other processes use less than this
	quietWait  time.Duration // … but at most this long
}

// tpResult is one throughput measurement.
type tpResult struct {
	QoS        int `json:"qos"`
	Publishers int `json:"publishers"`
	// Things is how many things the publishers cycle over (-things); 0
	// is one thing per publisher.
	Things     int     `json:"things,omitempty"`
	PerPub     int     `json:"messages_per_publisher"`
	Sent       int64   `json:"sent"`
	Done       int64   `json:"completed"` // QoS 1: PUBACKs; QoS 0: delivered to the subscriber
	Errors     int64   `json:"errors"`
	ElapsedS   float64 `json:"elapsed_s"`
	Rate       float64 `json:"msgs_per_s"` // Done / elapsed
	Delivered  float64 `json:"delivered_ratio"`
	PubRate    float64 `json:"publish_rate_msgs_per_s"` // Sent / time the publishers took
	WarmupSent int64   `json:"warmup_sent"`
	ConnectMS  float64 `json:"connect_ms"`   // connecting all publishers in parallel
	ServerCPU  float64 `json:"server_cores"` // CPU cores the broker used while measured
	ClientCPU  float64 `json:"client_cores"` // CPU cores this program used while measured
	OtherCPU   float64 `json:"other_cores"`  // CPU cores other processes used while measured
	DrainS     float64 `json:"drain_s"`      // broker busy after the case (appliance: history, state)
}

// latResult is one fixed-rate latency measurement.
type latResult struct {
	Rate         float64  `json:"target_msgs_per_s"`
	Achieved     float64  `json:"achieved_msgs_per_s"`
	Publishers   int      `json:"publishers"`
	Measured     int      `json:"measured"`
	Errors       int64    `json:"errors"`
	Stored       pctStats `json:"publish_to_puback_ms"`
	SendLateP99  float64  `json:"send_lateness_p99_ms"` // how late publishes left vs the schedule
	Visible      pctStats `json:"publish_to_visible_ms"`
	VisibleMiss  int      `json:"visible_missed"`
	PollEveryMS  float64  `json:"poll_interval_ms"`
	PollRTT      pctStats `json:"poll_rtt_ms"`
	ServerCPU    float64  `json:"server_cores"`
	ClientCPU    float64  `json:"client_cores"`
	OtherCPU     float64  `json:"other_cores"`
	DrainS       float64  `json:"drain_s"`
	SampleEveryN int      `json:"sample_every"`
	// Windows: publish→PUBACK per 10 s of the measured time (does the
	// latency drift as the run goes on?).
	Windows []windowStat `json:"windows,omitempty"`
}

type windowStat struct {
	FromS int     `json:"from_s"`
	N     int     `json:"n"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

const window = 10 * time.Second

func windows(lats []time.Duration, offs []time.Duration) []windowStat {
	by := map[int][]time.Duration{}
	last := 0
	for i, d := range lats {
		w := int(offs[i] / window)
		by[w] = append(by[w], d)
		last = max(last, w)
	}
	var out []windowStat
	for w := 0; w <= last; w++ {
		st := statsOf(by[w])
		out = append(out, windowStat{FromS: w * int(window/time.Second), N: st.N, P50: st.P50, P99: st.P99, Max: st.Max})
	}
	return out
}

type pctStats struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

func statsOf(ds []time.Duration) pctStats {
	if len(ds) == 0 {
		return pctStats{}
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return pctStats{N: len(ds), P50: ms(percentile(ds, 50)), P90: ms(percentile(ds, 90)),
		P99: ms(percentile(ds, 99)), P999: ms(percentile(ds, 99.9)), Max: ms(percentile(ds, 100))}
}

// cpuMeter measures the CPU the broker, this program and everything else
// on the machine use.
type cpuMeter struct {
	pid             string
	srv, self, all  time.Duration
	start           time.Time
	srvOK, sOK, aOK bool
}

func startCPU(pid string) *cpuMeter {
	m := &cpuMeter{pid: pid, start: time.Now()}
	var err error
	m.srv, err = cpuTime(pid)
	m.srvOK = err == nil
	m.self, err = cpuTime("self")
	m.sOK = err == nil
	m.all, err = machineBusy()
	m.aOK = err == nil
	return m
}

// cores returns the average cores used by the broker, by this program and
// by all other processes (a shared machine's other jobs).
func (m *cpuMeter) cores() (srv, self, other float64) {
	wall := time.Since(m.start).Seconds()
	var ds, dm time.Duration
	if s, err := cpuTime(m.pid); err == nil && m.srvOK {
		ds = s - m.srv
	}
	if s, err := cpuTime("self"); err == nil && m.sOK {
		dm = s - m.self
	}
	srv, self = ds.Seconds()/wall, dm.Seconds()/wall
	if a, err := machineBusy(); err == nil && m.aOK {
		other = max(0, (a-m.all-ds-dm).Seconds()/wall)
	}
	return srv, self, other
}

// connectAll opens n publisher connections in parallel.
func connectAll(s *server, n int, tag string) ([]paho.Client, time.Duration, error) {
	cs := make([]paho.Client, n)
	errs := make([]error, n)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs[i], errs[i] = connect(s, fmt.Sprintf("bench-%s-p%d", tag, i))
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		disconnectAll(cs)
		return nil, 0, err
	}
	return cs, took, nil
}

func disconnectAll(cs []paho.Client) {
	for _, c := range cs {
		if c != nil {
			c.Disconnect(50)
		}
	}
}

// subscriber counts what arrives on org/bench/#.
type subscriber struct {
	c    paho.Client
	base time.Time
	n    atomic.Int64
	last atomic.Int64 // time of the last message, as time since base
}

func subscribe(s *server, id string) (*subscriber, error) {
	c, err := connect(s, id)
	if err != nil {
		return nil, err
	}
	sub := &subscriber{c: c, base: time.Now()}
	t := c.Subscribe(subFilter, 0, func(paho.Client, paho.Message) {
		sub.n.Add(1)
		sub.last.Store(int64(time.Since(sub.base)))
	})
	if !t.WaitTimeout(30*time.Second) || t.Error() != nil {
		c.Disconnect(50)
		return nil, fmt.Errorf("%s: subscribe %s: %v", s.name, subFilter, t.Error())
	}
	return sub, nil
}

// wait waits until want messages arrived or none came for idle, and
// returns the count and the time of the last one.
func (sub *subscriber) wait(ctx context.Context, want int64, idle time.Duration) (int64, time.Time) {
	seen, since := sub.n.Load(), time.Now()
	for {
		n := sub.n.Load()
		if n >= want || ctx.Err() != nil {
			break
		}
		if n != seen {
			seen, since = n, time.Now()
		} else if time.Since(since) > idle {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return sub.n.Load(), sub.base.Add(time.Duration(sub.last.Load()))
}

// phaseResult is one burst of publishing.
type phaseResult struct {
	sent, done, errs int64
	elapsed, pubTime time.Duration
}

// burst has every publisher send m messages (or, with m == 0, send until
// deadline) and waits for all PUBACKs (QoS 1) or deliveries (QoS 0).
func burst(ctx context.Context, s *server, cs []paho.Client, groups [][]int, qos byte, m int, deadline time.Time,
	sub *subscriber, cfg loadConfig) (phaseResult, error) {
	var res phaseResult
	if sub != nil {
		sub.n.Store(0)
	}
	var sent, acked, errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for k, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, e := publishLoop(ctx, s, c, groups[k], qos, m, deadline, cfg, &sent)
			acked.Add(a)
			errs.Add(e)
		}()
	}
	wg.Wait()
	res.pubTime = time.Since(start)
	res.sent, res.errs = sent.Load(), errs.Load()
	end := time.Now()
	if qos == 0 {
		var last time.Time
		res.done, last = sub.wait(ctx, res.sent, cfg.idle)
		if res.done > 0 {
			end = last
		}
	} else {
		res.done = acked.Load()
	}
	res.elapsed = end.Sub(start)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if res.errs > 0 && res.done == 0 {
		return res, fmt.Errorf("%s: every publish failed", s.name)
	}
	return res, nil
}

// publishLoop is one publisher: it publishes to its own things in turn,
// QoS 1 with a window of cfg.inflight unacknowledged messages. It returns
// the PUBACKs and errors. No other publisher uses its things, so their
// values stay in order.
func publishLoop(ctx context.Context, s *server, c paho.Client, ks []int, qos byte, m int, deadline time.Time,
	cfg loadConfig, sent *atomic.Int64) (acked, errs int64) {
	topics := make([]string, len(ks))
	vs := make([]int64, len(ks))
	for j, k := range ks {
		topics[j], vs[j] = s.topic(k), s.vals[k]
	}
	defer func() {
		for j, k := range ks {
			s.vals[k] = vs[j]
		}
	}()
	// next is the i-th message: the topic and the next value of its thing.
	next := func(i int) (string, []byte) {
		j := i % len(ks)
		vs[j]++
		return topics[j], payload(vs[j], cfg.payloadSize)
	}
	more := func(i int) bool {
		if ctx.Err() != nil {
			return false
		}
		if m > 0 {
			return i < m
		}
		return time.Now().Before(deadline)
	}
	if qos == 0 {
		var last paho.Token
		for i := 0; more(i); i++ {
			topic, p := next(i)
			last = c.Publish(topic, 0, false, p)
			sent.Add(1)
			if i%1024 == 0 && last.Error() != nil {
				return 0, 1
			}
		}
		if last != nil && (!last.WaitTimeout(60*time.Second) || last.Error() != nil) {
			errs++
		}
		if !c.IsConnectionOpen() {
			errs++
		}
		return 0, errs
	}
	window := make(chan paho.Token, cfg.inflight)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for t := range window {
			if t.WaitTimeout(60*time.Second) && t.Error() == nil {
				acked++
			} else {
				errs++
			}
		}
	}()
	for i := 0; more(i); i++ {
		topic, p := next(i)
		window <- c.Publish(topic, qos, false, p)
		sent.Add(1)
	}
	close(window)
	<-done
	return acked, errs
}

// runThroughput measures one throughput case: connect one publisher per
// group of things (and for QoS 0 the subscriber), warm up, then measure.
func runThroughput(ctx context.Context, s *server, groups [][]int, qos byte, cfg loadConfig, tag string) (tpResult, error) {
	n := len(groups)
	r := tpResult{QoS: int(qos), Publishers: n}
	cs, took, err := connectAll(s, n, tag)
	if err != nil {
		return r, err
	}
	defer disconnectAll(cs)
	r.ConnectMS = float64(took) / 1e6
	var sub *subscriber
	if qos == 0 {
		if sub, err = subscribe(s, "bench-"+tag+"-sub"); err != nil {
			return r, err
		}
		defer sub.c.Disconnect(50)
	}

	// Warm-up: time-bounded, excluded; its rate sizes M.
	w, err := burst(ctx, s, cs, groups, qos, 0, time.Now().Add(cfg.warmup), sub, cfg)
	if err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}
	r.WarmupSent = w.sent
	m := cfg.m
	if m <= 0 {
		rate := float64(w.done) / w.elapsed.Seconds()
		m = int(rate * cfg.caseTime.Seconds() / float64(n))
		m = max(m, 200)
		m = min(m, 2_000_000)
	}
	r.PerPub = m
	// Let the appliance catch up with the warm-up before measuring, and
	// other jobs on a shared machine finish.
	_, _ = waitIdle(s.pidString(), 30*time.Second)
	if cfg.quietWait > 0 {
		waitQuiet(s.pidString(), cfg.quietCores, cfg.quietWait)
	}

	cpu := startCPU(s.pidString())
	ph, err := burst(ctx, s, cs, groups, qos, m, time.Time{}, sub, cfg)
	if err != nil {
		return r, err
	}
	r.ServerCPU, r.ClientCPU, r.OtherCPU = cpu.cores()
	r.Sent, r.Done, r.Errors = ph.sent, ph.done, ph.errs
	r.ElapsedS = ph.elapsed.Seconds()
	r.Rate = float64(ph.done) / ph.elapsed.Seconds()
	r.PubRate = float64(ph.sent) / ph.pubTime.Seconds()
	r.Delivered = float64(ph.done) / float64(max(ph.sent, 1))
	d, _ := waitIdle(s.pidString(), 120*time.Second)
	r.DrainS = d.Seconds()
	return r, nil
}

// runLatency publishes QoS 1 at a fixed total rate spread evenly over
// cfg.ratePubs publishers and measures publish→PUBACK for every message
// and, on the appliance, publish→visible in thing state for every
// cfg.sampleEvery-th message.
func runLatency(ctx context.Context, s *server, ks []int, cfg loadConfig, tag string) (latResult, error) {
	r := latResult{Rate: cfg.rate, Publishers: cfg.ratePubs, PollEveryMS: float64(cfg.pollEvery) / 1e6, SampleEveryN: cfg.sampleEvery}
	cs, _, err := connectAll(s, cfg.ratePubs, tag)
	if err != nil {
		return r, err
	}
	defer disconnectAll(cs)

	if cfg.quietWait > 0 {
		waitQuiet(s.pidString(), cfg.quietCores, cfg.quietWait)
	}
	var smp *sampler
	if s.api != nil {
		smp = newSampler(s)
	}
	period := time.Duration(float64(cfg.ratePubs) / cfg.rate * float64(time.Second))
	start := time.Now().Add(20 * time.Millisecond)
	from := start.Add(cfg.rateWarmup)
	end := from.Add(cfg.rateTime)

	var mu sync.Mutex
	var lats, late, offs []time.Duration
	var errs, count atomic.Int64
	var acks sync.WaitGroup
	var pubs sync.WaitGroup
	var cpu *cpuMeter
	var cpuOnce sync.Once
	pollCtx, stopPoll := context.WithCancel(ctx)
	pollDone := make(chan struct{})
	if smp != nil {
		go func() { defer close(pollDone); smp.run(pollCtx, cfg.pollEvery) }()
	} else {
		close(pollDone)
	}
	for i, c := range cs {
		k := ks[i]
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			topic := s.topic(k)
			offset := period * time.Duration(i) / time.Duration(len(cs))
			for j := 0; ctx.Err() == nil; j++ {
				at := start.Add(offset + time.Duration(j)*period)
				if !at.Before(end) {
					return
				}
				time.Sleep(time.Until(at))
				measured := !at.Before(from)
				if measured {
					cpuOnce.Do(func() { cpu = startCPU(s.pidString()) })
				}
				s.vals[k]++
				v := s.vals[k]
				p := payload(v, cfg.payloadSize)
				t0 := time.Now()
				tok := c.Publish(topic, 1, false, p)
				if measured {
					n := count.Add(1)
					if smp != nil && n%int64(cfg.sampleEvery) == 0 {
						smp.add(k, v, t0)
					}
				}
				acks.Add(1)
				go func() {
					defer acks.Done()
					select {
					case <-tok.Done():
					case <-time.After(60 * time.Second):
					}
					d := time.Since(t0)
					if tok.Error() != nil || d >= 60*time.Second {
						errs.Add(1)
						return
					}
					if measured {
						mu.Lock()
						lats = append(lats, d)
						late = append(late, t0.Sub(at))
						offs = append(offs, at.Sub(from))
						mu.Unlock()
					}
				}()
			}
		}()
	}
	pubs.Wait()
	acks.Wait()
	finished := time.Now()
	if cpu != nil {
		r.ServerCPU, r.ClientCPU, r.OtherCPU = cpu.cores()
	}
	if smp != nil {
		smp.drain(3 * time.Second)
	}
	stopPoll()
	<-pollDone
	if err := ctx.Err(); err != nil {
		return r, err
	}
	r.Measured = len(lats)
	r.Errors = errs.Load()
	r.Achieved = float64(count.Load()) / finished.Sub(from).Seconds()
	r.Stored = statsOf(lats)
	r.SendLateP99 = float64(percentile(late, 99)) / 1e6
	if cfg.rateTime > window {
		r.Windows = windows(lats, offs)
	}
	if smp != nil {
		r.Visible, r.VisibleMiss, r.PollRTT = smp.result()
	}
	d, _ := waitIdle(s.pidString(), 120*time.Second)
	r.DrainS = d.Seconds()
	if r.Measured == 0 {
		return r, fmt.Errorf("%s: no message acknowledged", s.name)
	}
	return r, nil
}

// sampler polls thing state over GraphQL until sampled values show up.
type sampler struct {
	s       *server
	mu      sync.Mutex
	pending []sample
	lats    []time.Duration
	rtts    []time.Duration
	missed  int
}

type sample struct {
	k  int
	v  int64
	at time.Time
}

func newSampler(s *server) *sampler { return &sampler{s: s} }

func (sm *sampler) add(k int, v int64, at time.Time) {
	sm.mu.Lock()
	sm.pending = append(sm.pending, sample{k, v, at})
	sm.mu.Unlock()
}

// run polls every interval (back to back if a poll takes longer) while
// samples are outstanding. A sample's latency is publish → the poll
// response that first shows the value (or a later one of the same thing),
// so it is an upper bound with a resolution of interval + one poll RTT.
func (sm *sampler) run(ctx context.Context, interval time.Duration) {
	for ctx.Err() == nil {
		next := time.Now().Add(interval)
		sm.poll()
		time.Sleep(time.Until(next))
	}
}

func (sm *sampler) poll() {
	sm.mu.Lock()
	seen := map[int]bool{}
	var ks []int
	for _, p := range sm.pending {
		if !seen[p.k] {
			seen[p.k] = true
			ks = append(ks, p.k)
		}
	}
	sm.mu.Unlock()
	if len(ks) == 0 {
		return
	}
	t0 := time.Now()
	vals, err := sm.s.thingValues(ks)
	now := time.Now()
	if err != nil {
		fmt.Fprintf(os.Stderr, "  visibility poll: %v\n", err)
		return
	}
	sm.mu.Lock()
	defer sm.mu.Unlock()
	sm.rtts = append(sm.rtts, now.Sub(t0))
	keep := sm.pending[:0]
	for _, p := range sm.pending {
		if v, ok := vals[p.k]; ok && v >= p.v {
			sm.lats = append(sm.lats, now.Sub(p.at))
			continue
		}
		keep = append(keep, p)
	}
	sm.pending = keep
}

// drain waits up to limit for the outstanding samples and counts the rest
// as missed.
func (sm *sampler) drain(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		sm.mu.Lock()
		n := len(sm.pending)
		sm.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	sm.mu.Lock()
	sm.missed = len(sm.pending)
	sm.pending = nil
	sm.mu.Unlock()
}

func (sm *sampler) result() (pctStats, int, pctStats) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return statsOf(sm.lats), sm.missed, statsOf(sm.rtts)
}

// spread deals things out to n publishers: publisher p gets ks[p],
// ks[p+n], … (one thing each when there are as many things as
// publishers).
func spread(ks []int, n int) [][]int {
	groups := make([][]int, n)
	for i, k := range ks {
		groups[i%n] = append(groups[i%n], k)
	}
	return groups
}
