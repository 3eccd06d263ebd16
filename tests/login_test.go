package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"testing"
)

// loginFrom posts a login from a given loopback source address.
func loginFrom(t *testing.T, a *appliance, src, email, password string) (int, string) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, n, addr string) (net.Conn, error) {
		return d.DialContext(ctx, n, addr)
	}}}
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	resp, err := c.Post(a.url+"/login", "application/json", bytes.NewReader(body))
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
