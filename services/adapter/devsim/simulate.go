// Package devsim simulates devices of the two device protocols — PIOT JSON
// packets (POST /adapter, plain or AES-128-ECB) and VD GPS trackers (POST
// /adapter/vdgps) — for demos, end-to-end tests and benchmarks of the
// adapters.
//
// Every packet carries its sequence number k = 1, 2, 3… of its device (as the
// temperature value, or encoded in the fix position, see FixPosition), and a
// device sends packet k only after packet k-1 was accepted, so a test can
// check exactly-once, in-order delivery from the stored history.
package devsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults and limits of Run.
const (
	DefaultPrefix = "sim"
	// DefaultTimeout bounds one request of the default client.
	DefaultTimeout = 10 * time.Second
	// MaxRetryAfter caps a server's Retry-After, so a misconfigured server
	// cannot park a device for hours.
	MaxRetryAfter = 30 * time.Second
	// Resends without a Retry-After back off exponentially between these.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// answerPeek is how much of a rejection's answer is logged.
	answerPeek = 512
)

// Config describes a simulation.
type Config struct {
	// URL is the adapter's base URL, e.g. http://127.0.0.1:8080; PIOT
	// packets go to URL+"/adapter", VD GPS packets to URL+"/adapter/vdgps".
	URL string
	// Devices is the number of simulated devices (at least 1).
	Devices int
	// Rate is packets per second per device; 0 sends as fast as answers
	// come back.
	Rate float64
	// Count is the number of packets per device; 0 sends until ctx ends.
	Count int
	// Prefix of device names (DeviceName); "" means DefaultPrefix.
	Prefix string
	// VDGPS sends VD GPS packets instead of PIOT packets.
	VDGPS bool
	// AESKey is "" (plaintext) or the adapter's 16-byte AES-128 key. PIOT
	// only: VD GPS has no encryption.
	AESKey string
	// Start is the device clock of each device's first packet; zero means
	// the time Run starts.
	Start time.Time
	// Step is how far the device clock advances per packet; 0 means 1/Rate
	// (1s when Rate is 0).
	Step time.Duration
	// Log, if set, gets one line per accepted packet:
	// "<device> <seq> <device unix time> <status>".
	Log io.Writer
	// Client sends the requests; nil means a client with DefaultTimeout that
	// keeps one idle connection per device.
	Client *http.Client
	Logger *slog.Logger
	// AnswerTimes keeps the time of every request answered 2xx in
	// Result.AnswerTimes (for benchmarks; it grows with the run).
	AnswerTimes bool
}

// Result sums up a simulation. Every request is counted once in Sent; a
// packet ends as OK or Rejected, or is abandoned when ctx ends, so Sent =
// OK + Rejected + Retried + abandoned packets.
type Result struct {
	// OKByDevice is the number of accepted packets of each device, by name.
	OKByDevice map[string]int
	// Sent is the number of requests, resends included.
	Sent int
	// OK is the number of packets answered 2xx: 200, or 202 when the adapter
	// accepted a packet of an unassigned or disabled device.
	OK int
	// Retried is the number of resends after 429, 503 or a network error.
	Retried int
	// Rejected is the number of packets answered with any other status;
	// they are not resent.
	Rejected int
	Elapsed  time.Duration
	// AnswerTimes are the times from sending to the answer of the requests
	// answered 2xx, sorted; only with Config.AnswerTimes.
	AnswerTimes []time.Duration
}

// AnswerPercentile is the p-th percentile (0–100) of AnswerTimes, 0
// without any.
func (r Result) AnswerPercentile(p float64) time.Duration {
	if len(r.AnswerTimes) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(r.AnswerTimes)))) - 1
	return r.AnswerTimes[min(max(i, 0), len(r.AnswerTimes)-1)]
}

// PacketsPerSecond is the rate of accepted packets over the whole run.
func (r Result) PacketsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// DeviceName is the name of device i (1-based): prefix followed by i
// zero-padded to four digits, so names sort in device order.
func DeviceName(prefix string, i int) string {
	return fmt.Sprintf("%s%04d", prefix, i)
}

// simulator is one Run's shared, read-only setup plus the log writer.
type simulator struct {
	cfg         Config
	endpoint    string
	contentType string
	key         []byte
	client      *http.Client
	log         *slog.Logger

	logMu  sync.Mutex
	logErr error
}

type deviceResult struct {
	name                        string
	sent, ok, retried, rejected int
	answers                     []time.Duration
	err                         error
}

// Run simulates cfg.Devices devices, one goroutine each, until each has
// sent cfg.Count packets or ctx ends; ctx ending is a normal end, not an
// error. The error reports a bad configuration, a packet that cannot be
// encoded or a failing Log writer; the Result is valid either way.
func Run(ctx context.Context, cfg Config) (Result, error) {
	s, err := newSimulator(cfg)
	if err != nil {
		return Result{}, err
	}
	if cfg.Client == nil {
		defer s.client.CloseIdleConnections()
	}
	begin := time.Now()
	if s.cfg.Start.IsZero() {
		s.cfg.Start = begin
	}
	results := make([]deviceResult, s.cfg.Devices)
	var wg sync.WaitGroup
	for i := range s.cfg.Devices {
		wg.Go(func() { results[i] = s.device(ctx, i) })
	}
	wg.Wait()

	res := Result{OKByDevice: make(map[string]int, len(results)), Elapsed: time.Since(begin)}
	var errs []error
	for _, r := range results {
		res.OKByDevice[r.name] = r.ok
		res.Sent += r.sent
		res.OK += r.ok
		res.Retried += r.retried
		res.Rejected += r.rejected
		res.AnswerTimes = append(res.AnswerTimes, r.answers...)
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	slices.Sort(res.AnswerTimes)
	if s.logErr != nil {
		errs = append(errs, fmt.Errorf("write packet log: %w", s.logErr))
	}
	return res, errors.Join(errs...)
}

func newSimulator(cfg Config) (*simulator, error) {
	switch {
	case cfg.Devices < 1:
		return nil, fmt.Errorf("devsim: need at least one device, got %d", cfg.Devices)
	case cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0):
		return nil, fmt.Errorf("devsim: rate must be a finite number >= 0, got %v", cfg.Rate)
	case cfg.Count < 0:
		return nil, fmt.Errorf("devsim: count must be >= 0, got %d", cfg.Count)
	case cfg.Count > MaxSeq:
		return nil, fmt.Errorf("devsim: count must be at most %d", MaxSeq)
	case cfg.Step < 0:
		return nil, fmt.Errorf("devsim: step must be >= 0, got %s", cfg.Step)
	case cfg.AESKey != "" && len(cfg.AESKey) != 16:
		return nil, fmt.Errorf("devsim: AES key must be exactly 16 bytes, got %d", len(cfg.AESKey))
	case cfg.AESKey != "" && cfg.VDGPS:
		return nil, errors.New("devsim: VD GPS packets cannot be encrypted")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("devsim: adapter URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("devsim: adapter URL %q must be http(s)://host[:port]", cfg.URL)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Step == 0 {
		cfg.Step = time.Second
		if cfg.Rate > 0 {
			cfg.Step = time.Duration(float64(time.Second) / cfg.Rate)
		}
	}
	s := &simulator{
		cfg:         cfg,
		endpoint:    strings.TrimRight(cfg.URL, "/") + "/adapter",
		contentType: "application/json",
		client:      cfg.Client,
		log:         cfg.Logger,
	}
	if cfg.VDGPS {
		s.endpoint += "/vdgps"
		s.contentType = "application/octet-stream"
	}
	if cfg.AESKey != "" {
		s.key = []byte(cfg.AESKey)
		s.contentType = "application/octet-stream"
	}
	if s.client == nil {
		s.client = &http.Client{Transport: newTransport(cfg.Devices), Timeout: DefaultTimeout}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// newTransport keeps one idle connection per device: the default of two per
// host would make most devices reconnect for every packet, which measures
// TCP setup instead of the adapter.
func newTransport(devices int) *http.Transport {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		t = &http.Transport{}
	}
	t = t.Clone()
	t.MaxIdleConnsPerHost = devices
	t.MaxIdleConns = max(t.MaxIdleConns, devices)
	return t
}

// device sends the packets of device i in order.
func (s *simulator) device(ctx context.Context, i int) deviceResult {
	r := deviceResult{name: DeviceName(s.cfg.Prefix, i+1)}
	limit := rate.Inf
	if s.cfg.Rate > 0 {
		limit = rate.Limit(s.cfg.Rate)
		// Spread the devices' first packets over one period so they do not
		// all hit the adapter at the same instant, every period.
		offset := time.Duration(float64(i) / float64(s.cfg.Devices) / s.cfg.Rate * float64(time.Second))
		if !sleep(ctx, offset) {
			return r
		}
	}
	// Burst 1: a device that fell behind (resends) does not catch up with
	// a burst, which would only earn it more 429s.
	pace := rate.NewLimiter(limit, 1)
	for seq := 1; s.cfg.Count == 0 || seq <= s.cfg.Count; seq++ {
		if seq > MaxSeq {
			r.err = fmt.Errorf("device %s: sequence numbers exhausted after %d packets", r.name, MaxSeq)
			return r
		}
		if err := pace.Wait(ctx); err != nil {
			return r // ctx ended or its deadline comes before the next slot
		}
		at := s.cfg.Start.Add(time.Duration(seq-1) * s.cfg.Step)
		var body []byte
		var err error
		if s.cfg.VDGPS {
			body, err = EncodeVDGPS(r.name, seq, at)
		} else {
			body, err = EncodePIOT(r.name, seq, at, s.key)
		}
		if err != nil {
			r.err = fmt.Errorf("device %s packet %d: %w", r.name, seq, err)
			return r
		}
		if !s.deliver(ctx, &r, seq, at, body) {
			return r
		}
	}
	return r
}

// deliver sends one packet until it is accepted or rejected; false means
// ctx ended first.
func (s *simulator) deliver(ctx context.Context, r *deviceResult, seq int, at time.Time, body []byte) bool {
	backoff := minBackoff
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			r.retried++
		}
		r.sent++
		sent := time.Now()
		status, retryAfter, answer, err := s.post(ctx, body)
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return false
			}
			wait = jitter(backoff)
			s.log.Debug("devsim: resending after network error", "device", r.name, "seq", seq, "wait", wait, "err", err)
		case status >= 200 && status < 300:
			r.ok++
			if s.cfg.AnswerTimes {
				r.answers = append(r.answers, time.Since(sent))
			}
			s.logPacket(r.name, seq, at, status)
			return true
		case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
			wait = retryAfter
			if wait <= 0 {
				wait = jitter(backoff)
			}
			s.log.Debug("devsim: resending", "device", r.name, "seq", seq, "status", status, "wait", wait)
		default:
			r.rejected++
			s.log.Warn("devsim: packet rejected", "device", r.name, "seq", seq, "status", status, "answer", answer)
			return true
		}
		backoff = min(2*backoff, maxBackoff)
		if !sleep(ctx, wait) {
			return false
		}
	}
}

// post sends one request and returns the status, the capped Retry-After
// and the start of the answer.
func (s *simulator) post(ctx context.Context, body []byte) (status int, retryAfter time.Duration, answer string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, 0, "", fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", s.contentType)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, 0, "", err
	}
	defer resp.Body.Close()
	peek, _ := io.ReadAll(io.LimitReader(resp.Body, answerPeek))
	// Drain what is left so the connection can be reused; answers are tiny.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), strings.TrimSpace(string(peek)), nil
}

// parseRetryAfter reads delay-seconds or an HTTP date, capped at
// MaxRetryAfter; 0 means absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}

func (s *simulator) logPacket(dev string, seq int, at time.Time, status int) {
	if s.cfg.Log == nil {
		return
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if s.logErr != nil {
		return
	}
	if _, err := fmt.Fprintf(s.cfg.Log, "%s %d %d %d\n", dev, seq, at.Unix(), status); err != nil {
		s.logErr = err
	}
}

// jitter spreads resends over [d/2, d) so devices refused together do not
// come back together.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2)
}

// sleep waits d or until ctx ends; false means ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
