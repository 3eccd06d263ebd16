package devsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/adapter/vdgps"
)

var quiet = slog.New(slog.DiscardHandler)

// dropConn is an answer of fakeAdapter: no answer, the connection closes.
const dropConn = -1

// arrival is one request as the fake adapter saw it.
type arrival struct {
	dev     string
	seq     int
	attempt int // 1 for the first request of this packet
	at      time.Time
}

// fakeAdapter decodes packets like the real adapters and lets a test decide
// each answer. It records the accepted sequence numbers per device in
// arrival order.
type fakeAdapter struct {
	t    *testing.T
	key  string
	path string
	// answer returns the status of a request; 0 means 200 and dropConn
	// closes the connection without an answer. It may set headers. nil
	// accepts everything.
	answer func(w http.ResponseWriter, a arrival) int

	mu       sync.Mutex
	attempts map[[2]any]int
	accepted map[string][]int
	arrivals []arrival
}

func newFake(t *testing.T, key, path string, answer func(http.ResponseWriter, arrival) int) (*fakeAdapter, *httptest.Server) {
	f := &fakeAdapter{t: t, key: key, path: path, answer: answer,
		attempts: map[[2]any]int{}, accepted: map[string][]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeAdapter) decode(body []byte) (dev string, seq int, err error) {
	if f.path == "/adapter/vdgps" {
		p, err := vdgps.Parse(body)
		if err != nil || len(p.Fixes) != 1 {
			return "", 0, fmt.Errorf("vdgps packet: %v", err)
		}
		seq, ok := FixSeq(p.Fixes[0].Lat, p.Fixes[0].Lng)
		if !ok {
			return "", 0, errors.New("foreign position")
		}
		return p.ID, seq, nil
	}
	if f.key != "" {
		if bytes.HasPrefix(body, []byte("{")) {
			return "", 0, errors.New("plaintext sent although a key is set")
		}
		if body, err = decryptECB(f.key, body); err != nil {
			return "", 0, err
		}
	}
	var w wirePIOT
	if err := json.Unmarshal(body, &w); err != nil {
		return "", 0, err
	}
	if len(w.Readings) != 1 || w.Readings[0].T == nil {
		return "", 0, errors.New("want one reading")
	}
	return w.Device, int(*w.Readings[0].T), nil
}

func (f *fakeAdapter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Method != http.MethodPost || r.URL.Path != f.path {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	dev, seq, err := f.decode(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.attempts[[2]any{dev, seq}]++
	a := arrival{dev: dev, seq: seq, attempt: f.attempts[[2]any{dev, seq}], at: time.Now()}
	f.arrivals = append(f.arrivals, a)
	f.mu.Unlock()
	status := http.StatusOK
	if f.answer != nil {
		if s := f.answer(w, a); s != 0 {
			status = s
		}
	}
	if status == dropConn {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			f.t.Error(err)
			return
		}
		_ = conn.Close()
		return
	}
	if status == http.StatusOK {
		f.mu.Lock()
		f.accepted[dev] = append(f.accepted[dev], seq)
		f.mu.Unlock()
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"error":"","result":""}`)
}

func (f *fakeAdapter) acceptedOf(dev string) []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.accepted[dev])
}

func seqs(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func run(t *testing.T, cfg Config) Result {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run outlived the test's deadline")
	}
	return res
}

func TestRunResendsAfter429InOrder(t *testing.T) {
	for _, key := range []string{"", testKey} {
		t.Run(fmt.Sprintf("encrypted=%v", key != ""), func(t *testing.T) {
			f, srv := newFake(t, key, "/adapter", func(w http.ResponseWriter, a arrival) int {
				if a.seq == 1 && a.attempt == 1 {
					w.Header().Set("Retry-After", "1")
					return http.StatusTooManyRequests
				}
				return 0
			})
			const devices, count = 3, 5
			res := run(t, Config{URL: srv.URL, Devices: devices, Rate: 50, Count: count, AESKey: key})

			for i := 1; i <= devices; i++ {
				dev := DeviceName("sim", i)
				if got := f.acceptedOf(dev); !slices.Equal(got, seqs(count)) {
					t.Errorf("%s accepted %v, want %v", dev, got, seqs(count))
				}
				if res.OKByDevice[dev] != count {
					t.Errorf("OKByDevice[%s] = %d", dev, res.OKByDevice[dev])
				}
			}
			if res.OK != devices*count || res.Retried != devices || res.Rejected != 0 || res.Sent != devices*count+devices {
				t.Fatalf("result %+v", res)
			}
			// Retry-After was honoured: each device's resend came at least
			// 1s after its refused first request, and nothing overtook it.
			f.mu.Lock()
			defer f.mu.Unlock()
			first := map[string]time.Time{}
			for _, a := range f.arrivals {
				if a.seq == 1 && a.attempt == 1 {
					first[a.dev] = a.at
				}
				if a.seq == 1 && a.attempt == 2 && a.at.Sub(first[a.dev]) < time.Second {
					t.Errorf("%s resent after %s", a.dev, a.at.Sub(first[a.dev]))
				}
				if a.attempt > 2 {
					t.Errorf("%s packet %d sent %d times", a.dev, a.seq, a.attempt)
				}
			}
			if res.Elapsed < time.Second {
				t.Errorf("elapsed %s", res.Elapsed)
			}
		})
	}
}

func TestRunDoesNotResendRejected(t *testing.T) {
	f, srv := newFake(t, "", "/adapter", func(_ http.ResponseWriter, a arrival) int {
		if a.seq == 2 {
			return http.StatusConflict
		}
		return 0
	})
	res := run(t, Config{URL: srv.URL, Devices: 2, Count: 3, Prefix: "rej"})
	for _, dev := range []string{"rej0001", "rej0002"} {
		if got := f.acceptedOf(dev); !slices.Equal(got, []int{1, 3}) {
			t.Errorf("%s accepted %v", dev, got)
		}
		if res.OKByDevice[dev] != 2 {
			t.Errorf("OKByDevice %v", res.OKByDevice)
		}
	}
	if res.OK != 4 || res.Rejected != 2 || res.Retried != 0 || res.Sent != 6 {
		t.Fatalf("result %+v", res)
	}
}

func TestRunBacksOffOn503WithoutRetryAfter(t *testing.T) {
	f, srv := newFake(t, "", "/adapter", func(_ http.ResponseWriter, a arrival) int {
		if a.seq == 2 && a.attempt <= 3 {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	res := run(t, Config{URL: srv.URL, Devices: 1, Count: 3})
	if got := f.acceptedOf("sim0001"); !slices.Equal(got, seqs(3)) {
		t.Fatalf("accepted %v", got)
	}
	if res.OK != 3 || res.Retried != 3 || res.Sent != 6 {
		t.Fatalf("result %+v", res)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// Backoff 100ms, 200ms, 400ms with jitter to [d/2, d): at least 350ms.
	var firstTry, lastTry time.Time
	for _, a := range f.arrivals {
		if a.seq == 2 && a.attempt == 1 {
			firstTry = a.at
		}
		if a.seq == 2 && a.attempt == 4 {
			lastTry = a.at
		}
	}
	if d := lastTry.Sub(firstTry); d < 350*time.Millisecond {
		t.Fatalf("three resends within %s: no backoff", d)
	}
}

func TestRunResendsAfterNetworkError(t *testing.T) {
	f, srv := newFake(t, "", "/adapter", func(_ http.ResponseWriter, a arrival) int {
		if a.seq == 1 && a.attempt == 1 {
			return dropConn
		}
		return 0
	})
	res := run(t, Config{URL: srv.URL, Devices: 1, Count: 2})
	if got := f.acceptedOf("sim0001"); !slices.Equal(got, seqs(2)) {
		t.Fatalf("accepted %v", got)
	}
	if res.OK != 2 || res.Retried != 1 || res.Sent != 3 {
		t.Fatalf("result %+v", res)
	}
}

func TestRunUntilContextEnds(t *testing.T) {
	f, srv := newFake(t, "", "/adapter", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	res, err := Run(ctx, Config{URL: srv.URL, Devices: 2, Rate: 20, Logger: quiet})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, dev := range []string{"sim0001", "sim0002"} {
		got := f.acceptedOf(dev)
		if len(got) < 3 || !slices.Equal(got, seqs(len(got))) || res.OKByDevice[dev] != len(got) {
			t.Errorf("%s accepted %v, result %d", dev, got, res.OKByDevice[dev])
		}
		// 20/s for 0.5s: about 10, never a burst beyond the rate.
		if len(got) > 12 {
			t.Errorf("%s sent %d packets in 0.5s at 20/s", dev, len(got))
		}
	}
}

func TestRunPacesAtRate(t *testing.T) {
	_, srv := newFake(t, "", "/adapter", nil)
	res := run(t, Config{URL: srv.URL, Devices: 1, Rate: 10, Count: 5})
	// Packets at 0, 100, …, 400ms.
	if res.OK != 5 || res.Elapsed < 380*time.Millisecond {
		t.Fatalf("result %+v", res)
	}
}

func TestRunLogsAcceptedPackets(t *testing.T) {
	_, srv := newFake(t, "", "/adapter", func(_ http.ResponseWriter, a arrival) int {
		if a.seq == 2 {
			return http.StatusAccepted // unassigned device: still accepted
		}
		if a.seq == 3 {
			return http.StatusBadRequest
		}
		return 0
	})
	var log bytes.Buffer
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	res := run(t, Config{URL: srv.URL + "/", Devices: 1, Count: 4, Start: start, Step: time.Minute, Log: &log})
	if res.OK != 3 || res.Rejected != 1 {
		t.Fatalf("result %+v", res)
	}
	u := start.Unix()
	want := fmt.Sprintf("sim0001 1 %d 200\nsim0001 2 %d 202\nsim0001 4 %d 200\n", u, u+60, u+180)
	if log.String() != want {
		t.Fatalf("log\n%s\nwant\n%s", log.String(), want)
	}
}

func TestRunDeviceClockDefaultsToRate(t *testing.T) {
	var mu sync.Mutex
	var times []int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p wirePIOT
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil || p.Time == nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		mu.Lock()
		times = append(times, int64(*p.Time))
		mu.Unlock()
	}))
	defer srv.Close()
	start := time.Unix(1_800_000_000, 0)
	run(t, Config{URL: srv.URL, Devices: 1, Rate: 100, Count: 3, Start: start, Step: 0})
	// Step 1/Rate = 10ms: all three packets fall in the first second.
	if !slices.Equal(times, []int64{1_800_000_000, 1_800_000_000, 1_800_000_000}) {
		t.Fatalf("times %v", times)
	}
	times = nil
	run(t, Config{URL: srv.URL, Devices: 1, Count: 3, Start: start})
	// Rate 0: 1s per packet.
	if !slices.Equal(times, []int64{1_800_000_000, 1_800_000_001, 1_800_000_002}) {
		t.Fatalf("times %v", times)
	}
}

func TestRunVDGPS(t *testing.T) {
	f, srv := newFake(t, "", "/adapter/vdgps", nil)
	res := run(t, Config{URL: srv.URL, Devices: 2, Count: 4, VDGPS: true, Prefix: "gps"})
	for _, dev := range []string{"gps0001", "gps0002"} {
		if got := f.acceptedOf(dev); !slices.Equal(got, seqs(4)) {
			t.Errorf("%s accepted %v", dev, got)
		}
	}
	if res.OK != 8 {
		t.Fatalf("result %+v", res)
	}
}

func TestRunConfigErrors(t *testing.T) {
	ok := Config{URL: "http://127.0.0.1:1", Devices: 1}
	for name, mod := range map[string]func(*Config){
		"no devices":     func(c *Config) { c.Devices = 0 },
		"negative rate":  func(c *Config) { c.Rate = -1 },
		"NaN rate":       func(c *Config) { c.Rate = math.NaN() },
		"negative count": func(c *Config) { c.Count = -1 },
		"huge count":     func(c *Config) { c.Count = MaxSeq + 1 },
		"negative step":  func(c *Config) { c.Step = -time.Second },
		"short key":      func(c *Config) { c.AESKey = "short" },
		"vdgps with key": func(c *Config) { c.AESKey, c.VDGPS = testKey, true },
		"no url":         func(c *Config) { c.URL = "" },
		"no scheme":      func(c *Config) { c.URL = "127.0.0.1:8080" },
		"ftp":            func(c *Config) { c.URL = "ftp://host" },
	} {
		cfg := ok
		mod(&cfg)
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRunReportsEncodeErrors(t *testing.T) {
	_, srv := newFake(t, "", "/adapter/vdgps", nil)
	// VD GPS cannot date fixes before 2000.
	res, err := Run(context.Background(), Config{URL: srv.URL, Devices: 1, Count: 1, VDGPS: true,
		Start: time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "sim0001 packet 1") || res.Sent != 0 {
		t.Fatalf("err %v, result %+v", err, res)
	}
}

func TestRunStopsResendingWhenContextEnds(t *testing.T) {
	_, srv := newFake(t, "", "/adapter", func(w http.ResponseWriter, _ arrival) int {
		w.Header().Set("Retry-After", "3600")
		return http.StatusTooManyRequests
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	res, err := Run(ctx, Config{URL: srv.URL, Devices: 1, Count: 1, Logger: quiet})
	if err != nil || res.OK != 0 || res.Sent != 1 || time.Since(begin) > 5*time.Second {
		t.Fatalf("err %v, result %+v after %s", err, res, time.Since(begin))
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"0":                             0,
		"1":                             time.Second,
		"7":                             7 * time.Second,
		"-5":                            0,
		"junk":                          0,
		"99999999999999999999":          0, // not an int64, not a date
		strconv.Itoa(1 << 40):           MaxRetryAfter,
		"Thu, 01 Jan 2026 00:00:05 GMT": 5 * time.Second,
		"Thu, 01 Jan 2026 01:00:00 GMT": MaxRetryAfter,
		"Wed, 31 Dec 2025 23:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestDeviceName(t *testing.T) {
	for _, c := range []struct {
		prefix string
		i      int
		want   string
	}{{"sim", 1, "sim0001"}, {"x", 42, "x0042"}, {"sim", 12345, "sim12345"}} {
		if got := DeviceName(c.prefix, c.i); got != c.want {
			t.Errorf("DeviceName(%q, %d) = %q", c.prefix, c.i, got)
		}
	}
}

// Answer times cover the accepted packets only, and the slow answers show
// in the high percentiles.
func TestRunAnswerTimes(t *testing.T) {
	_, srv := newFake(t, "", "/adapter", func(_ http.ResponseWriter, a arrival) int {
		switch a.seq {
		case 2:
			return http.StatusConflict
		case 10:
			time.Sleep(150 * time.Millisecond)
		}
		return 0
	})
	res := run(t, Config{URL: srv.URL, Devices: 2, Count: 10, Prefix: "lat", AnswerTimes: true})
	if len(res.AnswerTimes) != res.OK || res.OK != 18 {
		t.Fatalf("%d answer times for %d accepted packets", len(res.AnswerTimes), res.OK)
	}
	if !slices.IsSorted(res.AnswerTimes) {
		t.Fatal("answer times not sorted")
	}
	if p50, p99 := res.AnswerPercentile(50), res.AnswerPercentile(99); p50 >= 150*time.Millisecond || p99 < 150*time.Millisecond {
		t.Fatalf("p50 %v, p99 %v", p50, p99)
	}
	if (Result{}).AnswerPercentile(99) != 0 {
		t.Fatal("percentile of no answers")
	}
}
