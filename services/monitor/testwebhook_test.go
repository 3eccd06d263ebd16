package monitor

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/piot-appliance/piot/services/core"
)

func TestTestWebhook(t *testing.T) {
	e := newEnv(t)
	m := e.monitor(t, e.c, Config{})
	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	status := http.StatusNoContent
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, b)
		st := status
		mu.Unlock()
		w.WriteHeader(st)
	}))
	defer hook.Close()

	if err := m.TestWebhook(e.ctx, e.admin, e.org); core.CodeOf(err) != core.CodeBadInput {
		t.Fatalf("without a webhook: %v", err)
	}
	u, secret := hook.URL+"/in", "shh"
	if _, err := e.c.SetOrgNotifications(e.ctx, e.admin, e.org, &u, &secret); err != nil {
		t.Fatal(err)
	}
	member := e.user(t, "m@x.test", e.org, false)
	if err := m.TestWebhook(e.ctx, member, e.org); core.CodeOf(err) != core.CodeForbidden {
		t.Fatalf("a member: %v", err)
	}
	if err := m.TestWebhook(e.ctx, e.admin, e.org); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(got) != 1 || got[0].Header.Get(HeaderSignature) != Sign(bodies[0], secret) {
		t.Fatalf("requests: %d, signature %q", len(got), got[0].Header.Get(HeaderSignature))
	}
	var p WebhookPayload
	if err := json.Unmarshal(bodies[0], &p); err != nil || p.Event != EventTest || p.Org != "acme" || p.Thing != "" {
		t.Fatalf("payload %s: %v", bodies[0], err)
	}
	status = http.StatusInternalServerError
	mu.Unlock()
	if err := m.TestWebhook(e.ctx, e.admin, e.org); core.CodeOf(err) != core.CodeUnavailable {
		t.Fatalf("a failing receiver: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("a test is not retried: %d requests", len(got))
	}
}
