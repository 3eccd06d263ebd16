// Package tests drives the real `piot` binary end to end: the embedded
// store, the HTTP API and the CLI, on loopback only.
package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// piotBin is built once by TestMain.
var piotBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "piot-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	piotBin = filepath.Join(dir, "piot")
	build := exec.Command("go", "build", "-o", piotBin, "../appliance/cmd/piot")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build piot:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// handedOut are the ports freeAddr gave: a port is free again once its
// probe listener closes, and the kernel may offer it twice in a row, which
// made one appliance's HTTP and SSH listeners collide.
var handedOut = struct {
	sync.Mutex
	ports map[string]bool
}{ports: map[string]bool{}}

// freeAddr returns a loopback address with a free port, never one it
// returned before in this test process.
func freeAddr(t *testing.T) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if !handedOut.ports[addr] {
			handedOut.ports[addr] = true
			return addr
		}
	}
}

// syncBuffer collects a process's output safely.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// appliance is one running `piot run`.
type appliance struct {
	t       *testing.T
	dataDir string
	addr    string
	url     string
	// MQTT listeners: TCP, TLS, WebSocket.
	mqttAddr, mqttsAddr, wsAddr string
	sshAddr                     string
	cmd                         *exec.Cmd
	out                         *syncBuffer
	done                        chan error
}

type startOpts struct {
	dataDir string
	env     []string
	args    []string
}

// startAppliance runs the binary and waits until /readyz answers 200.
func startAppliance(t *testing.T, o startOpts) *appliance {
	t.Helper()
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	a := &appliance{t: t, dataDir: o.dataDir, addr: freeAddr(t), out: &syncBuffer{}, done: make(chan error, 1),
		mqttAddr: freeAddr(t), mqttsAddr: freeAddr(t), wsAddr: freeAddr(t), sshAddr: freeAddr(t)}
	a.url = "http://" + a.addr
	args := append([]string{"run", "--data-dir", o.dataDir, "--http-addr", a.addr, "--bcrypt-cost", "4",
		"--mqtt-addr", a.mqttAddr, "--mqtts-addr", a.mqttsAddr, "--mqtt-ws-addr", a.wsAddr, "--ssh-addr", a.sshAddr}, o.args...)
	a.cmd = exec.Command(piotBin, args...)
	a.cmd.Env = append(os.Environ(), o.env...)
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.done <- a.cmd.Wait() }()
	t.Cleanup(func() { a.stop() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-a.done:
			a.done <- err
			t.Fatalf("piot exited during start: %v\n%s", err, a.out)
		default:
		}
		resp, err := http.Get(a.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return a
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("piot not ready after 60s:\n%s", a.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (a *appliance) stop() {
	if a.cmd.ProcessState != nil {
		return
	}
	_ = a.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-a.done:
		a.done <- err
		if err != nil {
			a.t.Errorf("piot exited with %v:\n%s", err, a.out)
		}
	case <-time.After(30 * time.Second):
		_ = a.cmd.Process.Kill()
		a.t.Errorf("piot did not stop in 30s:\n%s", a.out)
	}
}

// adminPassword reads the generated first-start password.
// kill ends the appliance with SIGKILL, as a power loss would.
func (a *appliance) kill() {
	if a.cmd.ProcessState != nil {
		return
	}
	_ = a.cmd.Process.Kill()
	err := <-a.done
	a.done <- err
}

func (a *appliance) adminPassword() string {
	b, err := os.ReadFile(filepath.Join(a.dataDir, "admin-password"))
	if err != nil {
		a.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// post sends a JSON body and returns status and decoded JSON.
func post(t *testing.T, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST %s: status %d, body is not JSON: %q", url, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func (a *appliance) login(email, password string) string {
	a.t.Helper()
	st, out := post(a.t, a.url+"/login", "", map[string]string{"email": email, "password": password})
	if st != http.StatusOK {
		a.t.Fatalf("login %s: %d %v", email, st, out)
	}
	return out["token"].(string)
}

// gql runs a GraphQL operation; it returns the HTTP status, data and the
// first error code (empty if none).
func (a *appliance) gql(token, query string, vars map[string]any) (int, map[string]any, string) {
	a.t.Helper()
	st, out := post(a.t, a.url+"/query", token, map[string]any{"query": query, "variables": vars})
	data, _ := out["data"].(map[string]any)
	return st, data, errCode(out)
}

func errCode(out map[string]any) string {
	errs, _ := out["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	e, _ := errs[0].(map[string]any)
	ext, _ := e["extensions"].(map[string]any)
	code, _ := ext["code"].(string)
	if code == "" {
		return "NO_CODE:" + fmt.Sprint(e["message"])
	}
	return code
}
