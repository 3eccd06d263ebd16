package web

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// stream opens /events with a cookie and returns its lines.
func stream(t *testing.T, base string, c *http.Cookie) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.AddCookie(c)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("/events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string, 100)
	go func() {
		defer resp.Body.Close()
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}

// next waits for the next event name ("" on timeout or end).
func next(lines <-chan string, wait time.Duration) string {
	deadline := time.After(wait)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return ""
			}
			if name, found := strings.CutPrefix(l, "event: "); found {
				return name
			}
		case <-deadline:
			return ""
		}
	}
}

// The live feed tells a page to refresh when something its user may see
// changes, and only then; signing out ends it.
func TestEventsFollowWhatTheUserMaySee(t *testing.T) {
	tw := newTestWeb(t)
	tw.srv.cfg.KeepAlive = 200 * time.Millisecond
	ts := httptest.NewServer(tw.srv)
	// Cleanups run last first: the streams end before the server closes.
	t.Cleanup(ts.Close)
	ctx := context.Background()
	bob, err := tw.env.Core.CreateUser(ctx, tw.env.Admin, "bob@acme.test", "correct horse battery", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.env.Core.AddOrgUser(ctx, tw.env.Admin, tw.env.Org.ID, bob.ID); err != nil {
		t.Fatal(err)
	}
	admin, _ := tw.signIn()
	member, memberTok := tw.signInAs("bob@acme.test", "correct horse battery")
	adminEvents, memberEvents := stream(t, ts.URL, admin), stream(t, ts.URL, member)

	if _, err := tw.env.Core.CreateOrg(ctx, tw.env.Admin, "other", ""); err != nil {
		t.Fatal(err)
	}
	if got := next(adminEvents, 2*time.Second); got != "change" {
		t.Fatalf("admin after a new org: %q", got)
	}
	if got := next(memberEvents, 500*time.Millisecond); got != "" {
		t.Fatalf("member told of another org's creation: %q", got)
	}
	desc := "renamed"
	if _, err := tw.env.Core.UpdateOrg(ctx, tw.env.Admin, core.OrgUpdate{ID: tw.env.Org.ID, Description: &desc}); err != nil {
		t.Fatal(err)
	}
	if got := next(memberEvents, 2*time.Second); got != "change" {
		t.Fatalf("member after their org changed: %q", got)
	}
	if w := tw.post(member, "/logout", map[string][]string{"csrf": {memberTok}}); w.Code != http.StatusSeeOther {
		t.Fatalf("logout: %d", w.Code)
	}
	if got := next(memberEvents, 2*time.Second); got != "signedout" {
		t.Fatalf("member's stream after signing out: %q", got)
	}
}
