package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/piot-appliance/piot/internal/ratelimit"
)

// LoginGuard counts failed logins per source address and per account
// (email). Scripts such as piot-cli log in before every command, so
// successes are never throttled, guessing is. The API's /login and the
// web manager's sign-in share one guard, so a guesser gains nothing by
// switching between them.
type LoginGuard struct {
	byAddr    *ratelimit.Buckets
	byAccount *ratelimit.Buckets
}

// NewLoginGuard allows perMinute failures with bursts of burst (0: 10 and
// 5); now nil is time.Now.
func NewLoginGuard(perMinute, burst int, now func() time.Time) *LoginGuard {
	if perMinute <= 0 {
		perMinute = 10
	}
	if burst <= 0 {
		burst = 5
	}
	if now == nil {
		now = time.Now
	}
	cfg := ratelimit.BucketsConfig{Rate: ratelimit.PerMinute(perMinute), Burst: burst, MaxKeys: 10000, Now: now}
	return &LoginGuard{byAddr: ratelimit.NewBuckets(cfg), byAccount: ratelimit.NewBuckets(cfg)}
}

// Check reports whether a login from addr for account may be tried now,
// and otherwise how long to wait.
func (g *LoginGuard) Check(addr, account string) (bool, time.Duration) {
	account = normAccount(account)
	ok, wait := g.byAddr.Check(addr)
	if okAccount, waitAccount := g.byAccount.Check(account); !okAccount {
		ok, wait = false, max(wait, waitAccount)
	}
	return ok, wait
}

// Failed counts a failed login.
func (g *LoginGuard) Failed(addr, account string) {
	g.byAddr.Allow(addr)
	g.byAccount.Allow(normAccount(account))
}

func normAccount(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// ClientAddr finds a request's client address: the TCP peer, or, when the
// peer is one of the trusted proxies, the last address in X-Forwarded-For
// that is not one of them (the ones before it could be made up by the
// client).
type ClientAddr struct {
	Trusted []netip.Prefix
}

// Of is the client's address of r.
func (c ClientAddr) Of(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !c.trusted(host) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if _, err := netip.ParseAddr(hop); err != nil {
			break // a garbled header: the proxy itself is all we know
		}
		if !c.trusted(hop) {
			return hop
		}
	}
	return host
}

func (c ClientAddr) trusted(ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range c.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
