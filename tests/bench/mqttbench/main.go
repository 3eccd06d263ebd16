// Command mqttbench compares the MQTT path of the piot appliance (mochi
// broker with per-org ACL, ingest journaled with fsync before PUBACK,
// thing state and history) with a plain Debian mosquitto on this machine:
// throughput at QoS 0 and QoS 1 for 1, 4 and 16 publishers, and latency
// at a fixed rate. It starts and stops both servers itself on free
// loopback ports with temporary data directories.
//
//	make bench-mqtt                         # builds bin/piot, runs with defaults
//	bin/mqttbench -piot bin/piot -json      # machine-readable output
//
// See README.md next to this file for what is measured and how.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type options struct {
	piot, mosquitto string
	brokers         []string
	pubs            []int
	qos             []int
	repeats         int
	bcryptCost      int
	tmp             string
	keep            bool
	nagle           bool
	reuseThings     bool
	jsonOut         bool
	skipThroughput  bool
	skipLatency     bool
	profile         string
	piotArgs        string
	things          int
	thingsPubs      int
	sustained       time.Duration
	load            loadConfig
}

func main() { os.Exit(run()) }

func run() int {
	var o options
	var brokers, pubs, qos string
	flag.StringVar(&o.piot, "piot", "bin/piot", "path of the piot binary (make build)")
	flag.StringVar(&o.piotArgs, "piot-args", "", "more `piot run` flags for the appliance, separated by spaces (to compare settings)")
	flag.StringVar(&o.mosquitto, "mosquitto", "", "path of the mosquitto broker (default: $PATH, then /usr/sbin/mosquitto)")
	flag.StringVar(&brokers, "brokers", "mosquitto,appliance", "brokers to measure")
	flag.StringVar(&pubs, "pubs", "1,4,16", "publisher counts N of the throughput cases")
	flag.StringVar(&qos, "qos", "0,1", "QoS levels of the throughput cases")
	flag.IntVar(&o.load.m, "m", 0, "messages per publisher in a throughput case; 0 sizes each case from its warm-up rate to last -case-time")
	flag.DurationVar(&o.load.caseTime, "case-time", 6*time.Second, "target measured duration of a throughput case when -m is 0")
	flag.DurationVar(&o.load.warmup, "warmup", time.Second, "warm-up publishing before each throughput case (excluded)")
	flag.IntVar(&o.load.payloadSize, "payload", 100, "payload size in bytes (JSON {\"v\":<n>,\"pad\":\"…\"}, at least 40)")
	flag.IntVar(&o.load.inflight, "inflight", 100, "QoS 1 window: unacknowledged messages per publisher")
	flag.DurationVar(&o.load.idle, "idle", 2*time.Second, "QoS 0: stop waiting for deliveries after this long without one (messages lost)")
	flag.Float64Var(&o.load.rate, "rate", 1000, "latency test: total messages per second")
	flag.IntVar(&o.load.ratePubs, "rate-pubs", 10, "latency test: publishers sharing the rate")
	flag.DurationVar(&o.load.rateTime, "rate-time", 10*time.Second, "latency test: measured duration")
	flag.DurationVar(&o.load.rateWarmup, "rate-warmup", time.Second, "latency test: warm-up at the same rate (excluded)")
	flag.IntVar(&o.load.sampleEvery, "sample-every", 50, "latency test: poll thing state for every n-th message (appliance)")
	flag.DurationVar(&o.load.pollEvery, "poll", 5*time.Millisecond, "latency test: thing state polling interval (at most 10ms recommended)")
	flag.Float64Var(&o.load.quietCores, "quiet-cores", 0.25, "before each case, wait until other processes on the machine use less than this many cores…")
	flag.DurationVar(&o.load.quietWait, "quiet-wait", 60*time.Second, "… but at most this long (0: do not wait)")
	flag.IntVar(&o.repeats, "repeats", 1, "runs of each case; the table shows the median")
	flag.IntVar(&o.bcryptCost, "bcrypt-cost", 12, "appliance --bcrypt-cost (12 is the production default; it costs only at the first connect)")
	flag.StringVar(&o.tmp, "tmpdir", os.TempDir(), "where the servers' temporary data directories go (the journal fsyncs there)")
	flag.BoolVar(&o.nagle, "mosquitto-nagle", false, "leave Nagle's algorithm on in mosquitto (its default; adds up to one publish interval to PUBACK latency)")
	flag.BoolVar(&o.reuseThings, "reuse-things", false, "publish to T1..TN in every case instead of new things per case (the appliance then pays for the history points earlier cases stored in the same hour buckets)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs, data) after the run")
	flag.BoolVar(&o.jsonOut, "json", false, "print JSON instead of the Markdown report")
	flag.BoolVar(&o.skipThroughput, "skip-throughput", false, "skip the throughput cases")
	flag.BoolVar(&o.skipLatency, "skip-latency", false, "skip the latency test")
	flag.StringVar(&o.profile, "profile", "", "write a CPU profile of the appliance during the sustained run to this file (go tool pprof -top bin/piot FILE)")
	flag.IntVar(&o.things, "things", 1000, "one more QoS 1 case: -things-pubs publishers cycling over this many things (each thing kept by one publisher); 0 skips it")
	flag.IntVar(&o.thingsPubs, "things-pubs", 16, "publishers of the -things case and of the sustained run")
	flag.DurationVar(&o.sustained, "sustained", 60*time.Second, "appliance only: publish QoS 1 over the -things things this long and report the rate stored in history, the largest backlog between journal and history and the peak RSS; 0 skips it")
	flag.Parse()

	var err error
	if o.brokers, err = parseList(brokers, func(s string) (string, error) {
		if s != "mosquitto" && s != "appliance" {
			return "", fmt.Errorf("unknown broker %q", s)
		}
		return s, nil
	}); err == nil {
		if o.pubs, err = parseList(pubs, parsePositive); err == nil {
			o.qos, err = parseList(qos, func(s string) (int, error) {
				q, err := strconv.Atoi(s)
				if err != nil || q < 0 || q > 1 {
					return 0, fmt.Errorf("QoS %q: only 0 and 1", s)
				}
				return q, nil
			})
		}
	}
	if err == nil {
		err = o.validate()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqttbench:", err)
		return 2
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, err := os.MkdirTemp(o.tmp, "piot-mqttbench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqttbench:", err)
		return 1
	}
	var once sync.Once
	cleanup := func() {
		once.Do(func() {
			stopAll(20 * time.Second)
			if o.keep {
				fmt.Fprintln(os.Stderr, "kept", base)
			} else {
				os.RemoveAll(base)
			}
		})
	}
	defer cleanup()
	// First signal: stop measuring and clean up; second signal or 30 s
	// later: kill the servers and leave.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "\nmqttbench: interrupted; stopping the servers")
		cancel()
		select {
		case <-sigs:
		case <-time.After(30 * time.Second):
		}
		procs.mu.Lock()
		for _, p := range procs.list {
			_ = p.cmd.Process.Kill()
		}
		procs.mu.Unlock()
		cleanup()
		os.Exit(130)
	}()

	rep, err := bench(ctx, o, base)
	if err != nil {
		if ctx.Err() != nil {
			return 130
		}
		fmt.Fprintln(os.Stderr, "mqttbench:", err)
		return 1
	}
	if o.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(os.Stderr, "mqttbench:", err)
			return 1
		}
	} else {
		rep.markdown(os.Stdout)
	}
	return 0
}

func (o *options) validate() error {
	l := &o.load
	switch {
	case o.repeats < 1:
		return errors.New("-repeats must be at least 1")
	case l.payloadSize < 40 || l.payloadSize > 256<<10:
		return errors.New("-payload must be between 40 and 262144 bytes")
	case l.inflight < 1 || l.inflight > 60000:
		return errors.New("-inflight must be between 1 and 60000")
	case l.m < 0 || l.caseTime <= 0 || l.warmup <= 0 || l.idle <= 0:
		return errors.New("-m, -case-time, -warmup and -idle must be positive")
	case l.rate <= 0 || l.ratePubs < 1 || l.rateTime <= 0 || l.rateWarmup < 0:
		return errors.New("-rate, -rate-pubs and -rate-time must be positive")
	case l.sampleEvery < 1 || l.pollEvery <= 0:
		return errors.New("-sample-every and -poll must be positive")
	case o.bcryptCost < 4 || o.bcryptCost > 31:
		return errors.New("-bcrypt-cost must be between 4 and 31")
	case o.things < 0 || o.things > 100_000 || o.thingsPubs < 1 || o.thingsPubs > 1000 || (o.things > 0 && o.things < o.thingsPubs):
		return errors.New("-things must be 0 or between -things-pubs and 100000, -things-pubs between 1 and 1000")
	case o.sustained < 0:
		return errors.New("-sustained must not be negative")
	}
	if slices.Contains(o.brokers, "appliance") {
		if _, err := os.Stat(o.piot); err != nil {
			return fmt.Errorf("piot binary: %w (run `make build` or pass -piot)", err)
		}
		if abs, err := filepath.Abs(o.piot); err == nil {
			o.piot = abs
		}
	}
	if slices.Contains(o.brokers, "mosquitto") {
		if o.mosquitto == "" {
			if p, err := exec.LookPath("mosquitto"); err == nil {
				o.mosquitto = p
			} else {
				o.mosquitto = "/usr/sbin/mosquitto"
			}
		}
		if _, err := os.Stat(o.mosquitto); err != nil {
			return fmt.Errorf("mosquitto broker not found (%v): install the Debian package with `bash tests/deps.sh` "+
				"(or `apt-get install mosquitto`), pass -mosquitto PATH, or measure only the appliance with -brokers appliance", err)
		}
	}
	return nil
}

func parsePositive(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000 {
		return 0, fmt.Errorf("publisher count %q: want 1..1000", s)
	}
	return n, nil
}

func parseList[T comparable](s string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := parse(f)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list %q", s)
	}
	return out, nil
}

// bench runs every case on every broker, one broker at a time (only the
// broker under test runs while it is measured).
func bench(ctx context.Context, o options, base string) (*report, error) {
	rep := &report{Env: environment(o, base), Results: map[string]*brokerResults{}}
	logf := func(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }
	logf("mqttbench: %s; data in %s (%s); journal-style write+fsync p50 %.2f ms", rep.Env.CPU, base, rep.Env.DataFS, rep.Env.FsyncP50MS)
	// Both brokers run for the whole benchmark and the cases alternate
	// between them, repeat by repeat: on a shared machine whose speed
	// drifts during a run, both then see the same drift, and the ratio
	// means something.
	servers := map[string]*server{}
	stopServers := func() error {
		var first error
		for _, name := range o.brokers {
			s := servers[name]
			if s == nil {
				continue
			}
			if err := s.stop(); err != nil && first == nil {
				first = err
			}
			delete(servers, name)
		}
		return first
	}
	defer func() { _ = stopServers() }()
	for _, name := range o.brokers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dir := filepath.Join(base, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		var s *server
		var err error
		logf("%s: starting", name)
		if name == "mosquitto" {
			s, err = startMosquitto(o.mosquitto, dir, o.nagle)
		} else {
			s, err = startAppliance(ctx, o.piot, dir, o.bcryptCost, o.profile != "", strings.Fields(o.piotArgs))
		}
		if err != nil {
			return nil, err
		}
		servers[name] = s
		rep.Results[name] = &brokerResults{}
	}
	fail := func(name string, err error) error {
		s := servers[name]
		return fmt.Errorf("%s: %w\nlog (%s):\n%s", name, err, s.p.logPath, s.p.logTail())
	}
	if !o.skipThroughput {
		for _, q := range o.qos {
			for _, n := range o.pubs {
				for r := range o.repeats {
					for _, name := range o.brokers {
						if err := throughputCase(ctx, o, servers[name], rep.Results[name], q, n, 0, r, logf); err != nil {
							return nil, fail(name, err)
						}
					}
				}
			}
		}
	}
	if o.things > 0 {
		for r := range o.repeats {
			for _, name := range o.brokers {
				if err := throughputCase(ctx, o, servers[name], rep.Results[name], 1, o.thingsPubs, o.things, r, logf); err != nil {
					return nil, fail(name, err)
				}
			}
		}
	}
	if o.sustained > 0 && o.things > 0 && servers["appliance"] != nil {
		if err := sustainedCase(ctx, o, servers["appliance"], rep.Results["appliance"], logf); err != nil {
			return nil, fail("appliance", err)
		}
	}
	if !o.skipLatency {
		for r := range o.repeats {
			for _, name := range o.brokers {
				if err := latencyCase(ctx, o, servers[name], rep.Results[name], r, logf); err != nil {
					return nil, fail(name, err)
				}
			}
		}
	}
	for _, name := range o.brokers {
		rep.Results[name].FirstConnectMS = float64(servers[name].firstConnect) / 1e6
	}
	if err := stopServers(); err != nil {
		logf("warning: %v", err)
	}
	rep.build(o)
	return rep, nil
}

// throughputCase runs one repeat of one throughput case on s: n
// publishers on a thing each (things 0), or cycling over things things.
func throughputCase(ctx context.Context, o options, s *server, res *brokerResults, q, n, things, rep int, logf func(string, ...any)) error {
	tag := fmt.Sprintf("q%dn%dt%dr%d", q, n, things, rep)
	var ks []int
	var err error
	if things > 0 {
		ks, err = s.manyThings(ctx, things, logf)
	} else {
		ks, err = s.things(ctx, n, o.reuseThings)
	}
	if err != nil {
		return err
	}
	r, err := runThroughput(ctx, s, spread(ks, n), byte(q), o.load, tag)
	if err != nil {
		return fmt.Errorf("QoS %d, %d publishers: %w", q, n, err)
	}
	r.Things = things
	if things > 0 {
		res.ThingsSetupS = s.setupS
	}
	res.Throughput = append(res.Throughput, r)
	logf("%s: QoS %d, %2d pub, %d things: %9.0f msg/s  (%d msgs in %.2fs, delivered %.1f%%, errors %d, cores: broker %.2f, client %.2f, others %.2f; busy %.1fs after)",
		s.name, q, n, max(things, n), r.Rate, r.Sent, r.ElapsedS, 100*r.Delivered, r.Errors, r.ServerCPU, r.ClientCPU, r.OtherCPU, r.DrainS)
	return nil
}

// latencyCase runs one repeat of the fixed-rate latency test on s.
func latencyCase(ctx context.Context, o options, s *server, res *brokerResults, rep int, logf func(string, ...any)) error {
	ks, err := s.things(ctx, o.load.ratePubs, o.reuseThings)
	if err != nil {
		return err
	}
	r, err := runLatency(ctx, s, ks, o.load, fmt.Sprintf("lat%d", rep))
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	res.Latency = append(res.Latency, r)
	vis := ""
	if r.Visible.N > 0 {
		vis = fmt.Sprintf("; visible p50 %.2f p99 %.2f ms (%d samples, %d missed)", r.Visible.P50, r.Visible.P99, r.Visible.N, r.VisibleMiss)
	}
	logf("%s: %.0f msg/s QoS 1: PUBACK p50 %.2f p99 %.2f max %.2f ms (%d msgs, %d errors; cores: broker %.2f, client %.2f, others %.2f)%s",
		s.name, r.Achieved, r.Stored.P50, r.Stored.P99, r.Stored.Max, r.Measured, r.Errors, r.ServerCPU, r.ClientCPU, r.OtherCPU, vis)
	return nil
}

// environment describes the machine and the software measured.
func environment(o options, base string) envInfo {
	e := envInfo{
		CPU: fmt.Sprintf("%d × %s", runtime.NumCPU(), cpuModel()), Kernel: kernel(), Go: runtime.Version(),
		DataFS: fsType(base), Date: time.Now().UTC().Format(time.RFC3339),
		Payload: o.load.payloadSize, Inflight: o.load.inflight, BcryptCost: o.bcryptCost,
	}
	if slices.Contains(o.brokers, "mosquitto") {
		e.Mosquitto = firstLine(o.mosquitto, "-h")
	}
	if slices.Contains(o.brokers, "appliance") {
		e.Piot = firstLine(o.piot, "version")
	}
	if p50, p99, err := fsyncProbe(base, 200); err == nil {
		e.FsyncP50MS, e.FsyncP99MS = float64(p50)/1e6, float64(p99)/1e6
	}
	return e
}
