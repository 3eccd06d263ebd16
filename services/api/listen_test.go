package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startOn starts a test server on a free loopback port and stops it at
// the end of the test.
func startOn(t *testing.T, edit func(*Config, *Deps)) *Server {
	t.Helper()
	ts := newTestServer(t, func(c *Config, d *Deps) {
		c.Addr = "127.0.0.1:0"
		if edit != nil {
			edit(c, d)
		}
	})
	if err := ts.srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.srv.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return ts.srv
}

func TestStartServesOverTCP(t *testing.T) {
	srv := startOn(t, nil)
	if srv.Addr() == "" || srv.HTTPSAddr() != "" {
		t.Fatalf("Addr %q, HTTPSAddr %q", srv.Addr(), srv.HTTPSAddr())
	}
	base := "http://" + srv.Addr()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || body["status"] != "ok" {
		t.Fatalf("healthz: %d %v %v", resp.StatusCode, body, err)
	}

	// A chunked upload over the limit is cut off with 413.
	pr, pw := io.Pipe()
	go func() {
		chunk := strings.Repeat("x", 64<<10)
		for sent := 0; sent <= MaxBodyBytes; sent += len(chunk) {
			if _, err := pw.Write([]byte(chunk)); err != nil {
				return
			}
		}
		pw.Close()
	}()
	resp, err = http.Post(base+"/login", "application/json", pr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pr.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked upload: %d", resp.StatusCode)
	}

	// Headers are bounded too (net/http answers 431).
	req, _ := http.NewRequest(http.MethodGet, base+"/healthz", nil)
	req.Header.Set("X-Padding", strings.Repeat("x", maxHeaderBytes+4096))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("large headers: %d", resp.StatusCode)
	}
}

func TestStartFailsOnABusyPort(t *testing.T) {
	busy := startOn(t, nil)
	ts := newTestServer(t, func(c *Config, _ *Deps) { c.Addr = busy.Addr() })
	if err := ts.srv.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "http: listen") {
		t.Fatalf("Start on a busy port: %v", err)
	}
	ts = newTestServer(t, func(c *Config, _ *Deps) { c.Addr, c.HTTPSAddr = "127.0.0.1:0", "127.0.0.1:0" })
	if err := ts.srv.Start(context.Background()); err == nil || err.Error() != "https: no TLS configuration" {
		t.Fatalf("HTTPS without TLS: %v", err)
	}
}
