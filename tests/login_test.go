package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
)

// clientFrom is an HTTP client whose connections come from a given
// loopback source address.
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, n, addr string) (net.Conn, error) {
		return d.DialContext(ctx, n, addr)
	}}}
}

// loginFrom posts a login from a given loopback source address.
func loginFrom(t *testing.T, a *appliance, src, email, password string) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	resp, err := clientFrom(src).Post(a.url+"/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// Scripts such as the original piot-cli log in before every command:
// successful logins are not throttled; failed ones are, per source
// address and per account (issue 11).
func TestLoginLimitsFailuresNotSuccesses(t *testing.T) {
	a := startAppliance(t, startOpts{args: []string{"--login-rate", "10", "--login-burst", "5"}})
	pw := a.adminPassword()
	for i := 0; i < 12; i++ {
		if st, _ := loginFrom(t, a, "127.0.0.1", "admin@piot.local", pw); st != http.StatusOK {
			t.Fatalf("successful login %d: %d", i+1, st)
		}
	}
	// Five wrong passwords for the admin from one address...
	for i := 0; i < 5; i++ {
		if st, _ := loginFrom(t, a, "127.0.0.1", "admin@piot.local", "wrong password"); st != http.StatusUnauthorized {
			t.Fatalf("failed login %d: %d", i+1, st)
		}
	}
	// ...block that address, for any account, even with the right password,
	if st, retry := loginFrom(t, a, "127.0.0.1", "nobody@piot.local", "x"); st != http.StatusTooManyRequests || retry == "" {
		t.Fatalf("address after 5 failures: %d Retry-After %q", st, retry)
	}
	// and that account, from any address.
	if st, _ := loginFrom(t, a, "127.0.0.2", "admin@piot.local", pw); st != http.StatusTooManyRequests {
		t.Fatalf("account after 5 failures, other address: %d", st)
	}
	// Other accounts from other addresses are not affected.
	if st, _ := loginFrom(t, a, "127.0.0.3", "someone@piot.local", "wrong"); st != http.StatusUnauthorized {
		t.Fatalf("other account, other address: %d", st)
	}
}

// Behind a trusted reverse proxy every user shares its address: the
// failed-login limit then counts the client X-Forwarded-For names, and
// only from the proxy (issue 11).
func TestTrustedProxyNamesTheClient(t *testing.T) {
	a := startAppliance(t, startOpts{args: []string{"--login-rate", "10", "--login-burst", "5", "--trusted-proxies", "127.0.0.1"}})
	login := func(src, xff, email string) int {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"email": email, "password": "wrong password"})
		req, _ := http.NewRequest(http.MethodPost, a.url+"/login", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := clientFrom(src).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// One client behind the proxy fails five times (a made-up first hop
	// does not change who it is)...
	for i := range 5 {
		if st := login("127.0.0.1", fmt.Sprintf("10.9.9.%d, 198.51.100.7", i), fmt.Sprintf("u%d@x.test", i)); st != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, st)
		}
	}
	if st := login("127.0.0.1", "198.51.100.7", "u9@x.test"); st != http.StatusTooManyRequests {
		t.Fatalf("the client behind the proxy after 5 failures: %d", st)
	}
	// ...another client behind the same proxy is not limited,
	if st := login("127.0.0.1", "198.51.100.8", "v@x.test"); st != http.StatusUnauthorized {
		t.Fatalf("another client behind the proxy: %d", st)
	}
	// and a peer that is not the proxy cannot choose its address.
	for i := range 5 {
		login("127.0.0.2", "198.51.100.200", fmt.Sprintf("w%d@x.test", i))
	}
	if st := login("127.0.0.2", "198.51.100.201", "w9@x.test"); st != http.StatusTooManyRequests {
		t.Fatalf("X-Forwarded-For from an untrusted peer was believed: %d", st)
	}
}
