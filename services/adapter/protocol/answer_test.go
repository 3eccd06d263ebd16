package protocol

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestOutcomeWrite(t *testing.T) {
	w := httptest.NewRecorder()
	Outcome{Status: http.StatusTooManyRequests, Msg: "slow down", RetryAfter: 1500 * time.Millisecond}.Write(w)
	var ans Answer
	if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusTooManyRequests || ans != (Answer{Error: "slow down"}) ||
		w.Header().Get("Retry-After") != "2" || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %+v %v", w.Code, ans, w.Header())
	}
	w = httptest.NewRecorder()
	Outcome{Status: http.StatusAccepted, Result: "device disabled"}.Write(w)
	if w.Body.String() != `{"error":"","result":"device disabled"}`+"\n" || w.Header().Get("Retry-After") != "" {
		t.Fatalf("%q %v", w.Body.String(), w.Header())
	}
}

func TestReadPOST(t *testing.T) {
	var rej Rejections
	for _, c := range []struct {
		method, body string
		status       int
		reason       string
	}{
		{http.MethodPost, `{"device":"d"}`, 0, ""},
		{http.MethodGet, "", http.StatusMethodNotAllowed, ReasonMethod},
		{http.MethodPost, strings.Repeat("x", 17), http.StatusRequestEntityTooLarge, ReasonTooLarge},
	} {
		w := httptest.NewRecorder()
		body, ok := ReadPOST(w, httptest.NewRequest(c.method, "/adapter", strings.NewReader(c.body)), 16, &rej)
		if c.status == 0 {
			if !ok || string(body) != c.body {
				t.Fatalf("%s: %q %v", c.method, body, ok)
			}
			continue
		}
		if ok || w.Code != c.status {
			t.Fatalf("%s %d bytes: %v %d", c.method, len(c.body), ok, w.Code)
		}
	}
	if st := rej.Snapshot(); st[ReasonMethod] != 1 || st[ReasonTooLarge] != 1 || len(st) != 2 {
		t.Fatalf("counted %v", st)
	}
}
