// Command adapterbench measures the device adapters on this machine:
// packets/s through POST /adapter of a real appliance until every reading
// is in the history (plain and AES-encrypted packets), and packets/s an
// edge adapter (`piot adapter`) takes into its on-disk spool. It starts
// its own processes on loopback with temporary data directories.
//
//	go build -o bin/adapterbench ./tests/bench/adapterbench
//	bin/adapterbench -piot bin/piot
//
// Not part of `make test`; `make bench-adapter` runs it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/piot-appliance/piot/services/adapter/devsim"
)

const aesKey = "bench-aes-key-16"

type options struct {
	piot    string
	devices int
	packets int
	tmp     string
}

func main() {
	var o options
	flag.StringVar(&o.piot, "piot", "bin/piot", "path of the piot binary (make build)")
	flag.IntVar(&o.devices, "devices", 50, "simulated devices posting at once")
	flag.IntVar(&o.packets, "packets", 1000, "packets per device in each case (history is written once a second, so a case of about a second measures that step more than the rate)")
	flag.StringVar(&o.tmp, "tmpdir", os.TempDir(), "where the temporary data directories go")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "adapterbench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	dir, err := os.MkdirTemp(o.tmp, "piot-adapterbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	fmt.Printf("## Device adapter benchmark\n\n%s · %d devices × %d packets per case, one reading per packet, as fast as answers come back\n\n",
		time.Now().UTC().Format(time.RFC3339), o.devices, o.packets)
	fmt.Println("| case | packets | answered 200 in s | packets/s answered | answer p50 / p99 ms | all in history after s | packets/s into history |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	var aes caseResult
	for _, enc := range []bool{false, true} {
		r, err := applianceCase(ctx, o, filepath.Join(dir, fmt.Sprintf("appliance-%v", enc)), enc)
		if err != nil {
			return err
		}
		aes = r
	}
	if err := edgeCase(ctx, o, filepath.Join(dir, "edge")); err != nil {
		return err
	}
	met := func(ok bool) string {
		if ok {
			return "**met**"
		}
		return "**NOT MET**"
	}
	fmt.Printf("\n**Targets** (%d devices)\n\n", o.devices)
	fmt.Printf("- AES /adapter into history ≥ 8 000 packets/s: %s — %.0f packets/s\n", met(aes.intoHistory >= 8000), aes.intoHistory)
	fmt.Printf("- AES /adapter answer p99 ≤ 20 ms: %s — %.1f ms\n", met(aes.p99 <= 20*time.Millisecond), ms(aes.p99))
	return nil
}

// caseResult is what the targets are checked against.
type caseResult struct {
	intoHistory float64 // packets/s
	p99         time.Duration
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// proc is a child process that dies with the benchmark.
type proc struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

func start(bin string, args ...string) (*proc, error) {
	p := &proc{cmd: exec.Command(bin, args...)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return p, p.cmd.Start()
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitHTTP(url string, within time.Duration) error {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("%s not up after %v", url, within)
}

// gql runs a GraphQL request and returns its data.
func gql(base, token, query string, vars map[string]any) (map[string]any, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, base+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Data   map[string]any `json:"data"`
		Errors []any          `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if len(out.Errors) > 0 {
		return nil, fmt.Errorf("graphql: %v", out.Errors)
	}
	return out.Data, nil
}

func applianceCase(ctx context.Context, o options, dataDir string, encrypted bool) (caseResult, error) {
	addrs := make([]string, 4)
	for i := range addrs {
		a, err := freeAddr()
		if err != nil {
			return caseResult{}, err
		}
		addrs[i] = a
	}
	args := []string{"run", "--data-dir", dataDir, "--http-addr", addrs[0], "--mqtt-addr", addrs[1], "--mqtts-addr", addrs[2],
		"--mqtt-ws-addr", addrs[3], "--ssh-addr", "", "--log-level", "warn", "--adapter-min-interval", "0",
		"--adapter-max-unassigned", fmt.Sprint(2*o.devices + 10)}
	key := ""
	if encrypted {
		key = aesKey
		args = append(args, "--adapter-aes-key", key)
	}
	p, err := start(o.piot, args...)
	if err != nil {
		return caseResult{}, err
	}
	defer p.stop()
	base := "http://" + addrs[0]
	if err := waitHTTP(base+"/readyz", time.Minute); err != nil {
		return caseResult{}, fmt.Errorf("%w\n%s", err, p.out.String())
	}
	pw, err := os.ReadFile(filepath.Join(dataDir, "admin-password"))
	if err != nil {
		return caseResult{}, err
	}
	tok, err := login(base, "admin@piot.local", strings.TrimSpace(string(pw)))
	if err != nil {
		return caseResult{}, err
	}
	data, err := gql(base, tok, `mutation { createOrg(name: "bench", description: "") { id } }`, nil)
	if err != nil {
		return caseResult{}, err
	}
	org := data["createOrg"].(map[string]any)["id"].(string)

	// First contact registers devices and sensors; assign and enable them.
	if _, err := devsim.Run(ctx, devsim.Config{URL: base, Devices: o.devices, Count: 1, AESKey: key, Prefix: "b"}); err != nil {
		return caseResult{}, err
	}
	data, err = gql(base, tok, `{ things(all: true) { id } }`, nil)
	if err != nil {
		return caseResult{}, err
	}
	for _, th := range data["things"].([]any) {
		id := th.(map[string]any)["id"].(string)
		if _, err := gql(base, tok, `mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`,
			map[string]any{"t": map[string]any{"id": id, "orgId": org, "enabled": true}}); err != nil {
			return caseResult{}, err
		}
	}
	time.Sleep(time.Second) // the ingest's topic index follows the change events
	token, err := os.ReadFile(filepath.Join(dataDir, "metrics-token"))
	if err != nil {
		return caseResult{}, err
	}
	before, err := storedPoints(base, strings.TrimSpace(string(token)))
	if err != nil {
		return caseResult{}, err
	}

	res, err := devsim.Run(ctx, devsim.Config{URL: base, Devices: o.devices, Count: o.packets, AESKey: key, Prefix: "b",
		Start: time.Now().Add(-time.Hour), Step: time.Second, AnswerTimes: true})
	if err != nil {
		return caseResult{}, err
	}
	if res.OK != o.devices*o.packets || res.Rejected > 0 {
		return caseResult{}, fmt.Errorf("simulator: %+v", res)
	}
	// Each packet is one sensor value; the device's own topics (available)
	// are state, not history.
	want := before + float64(o.devices*o.packets)
	var stored time.Duration
	for t0 := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		n, err := storedPoints(base, strings.TrimSpace(string(token)))
		if err != nil {
			return caseResult{}, err
		}
		if n >= want {
			stored = res.Elapsed + time.Since(t0)
			break
		}
		if time.Since(t0) > 2*time.Minute {
			return caseResult{}, fmt.Errorf("history has %.0f of %.0f points", n-before, want-before)
		}
	}
	name := "POST /adapter, plaintext"
	if encrypted {
		name = "POST /adapter, AES-128-ECB"
	}
	n := float64(res.OK)
	fmt.Printf("| %s | %d | %.2f | %.0f | %.1f / %.1f | %.2f | %.0f |\n", name, res.OK, res.Elapsed.Seconds(), n/res.Elapsed.Seconds(),
		ms(res.AnswerPercentile(50)), ms(res.AnswerPercentile(99)), stored.Seconds(), n/stored.Seconds())
	return caseResult{intoHistory: n / stored.Seconds(), p99: res.AnswerPercentile(99)}, nil
}

func login(base, email, password string) (string, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	resp, err := http.Post(base+"/login", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Token == "" {
		return "", fmt.Errorf("login: %d %v", resp.StatusCode, err)
	}
	return out.Token, nil
}

// storedPoints reads piot_ingest_history_points_stored_total.
func storedPoints(base, token string) (float64, error) {
	req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "piot_ingest_history_points_stored_total "); ok {
			var f float64
			_, err := fmt.Sscan(v, &f)
			return f, err
		}
	}
	return 0, errors.New("no piot_ingest_history_points_stored_total in /metrics")
}

func edgeCase(ctx context.Context, o options, spoolDir string) error {
	listen, err := freeAddr()
	if err != nil {
		return err
	}
	nowhere, err := freeAddr()
	if err != nil {
		return err
	}
	// The uplink is down (nobody listens), so this measures taking
	// packets into the spool, as during a GPRS outage.
	p, err := start(o.piot, "adapter", "--listen", listen, "--uplink", "mqtt://"+nowhere, "--org", "bench",
		"--username", "u", "--password", "p", "--spool-dir", spoolDir, "--min-interval", "0", "--log-level", "error",
		"--aes-key", aesKey)
	if err != nil {
		return err
	}
	defer p.stop()
	if err := waitHTTP("http://"+listen+"/status", 30*time.Second); err != nil {
		return fmt.Errorf("%w\n%s", err, p.out.String())
	}
	for _, enc := range []bool{false, true} {
		key, name := "", "edge adapter, spool write (uplink down), plaintext"
		if enc {
			key, name = aesKey, "edge adapter, spool write (uplink down), AES-128-ECB"
		}
		res, err := devsim.Run(ctx, devsim.Config{URL: "http://" + listen, Devices: o.devices, Count: o.packets, AESKey: key,
			Prefix: fmt.Sprintf("e%v", enc), AnswerTimes: true})
		if err != nil {
			return err
		}
		if res.OK != o.devices*o.packets {
			return fmt.Errorf("simulator: %+v", res)
		}
		fmt.Printf("| %s | %d | %.2f | %.0f | %.1f / %.1f | – | – |\n", name, res.OK, res.Elapsed.Seconds(), float64(res.OK)/res.Elapsed.Seconds(),
			ms(res.AnswerPercentile(50)), ms(res.AnswerPercentile(99)))
	}
	return nil
}
