package httpx

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestAnswerFormats pins the bytes both envelopes have on the wire: devices
// and clients of the original system parse them.
func TestAnswerFormats(t *testing.T) {
	type code string
	for name, tc := range map[string]struct {
		write  func(w http.ResponseWriter)
		status int
		body   string
	}{
		"device answer": {
			write:  func(w http.ResponseWriter) { WriteAnswer(w, http.StatusOK, Answer{Result: "ok"}) },
			status: http.StatusOK,
			body:   `{"error":"","result":"ok"}` + "\n",
		},
		"device refusal": {
			write:  func(w http.ResponseWriter) { WriteAnswer(w, http.StatusTooManyRequests, Answer{Error: "slow down"}) },
			status: http.StatusTooManyRequests,
			body:   `{"error":"slow down","result":""}` + "\n",
		},
		"endpoint failure": {
			write:  func(w http.ResponseWriter) { WriteError(w, http.StatusUnauthorized, code("UNAUTHENTICATED"), "no") },
			status: http.StatusUnauthorized,
			body:   `{"error":"no","result":"","code":"UNAUTHENTICATED"}` + "\n",
		},
	} {
		w := httptest.NewRecorder()
		tc.write(w)
		if w.Code != tc.status || w.Body.String() != tc.body || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q %q; want %d %q", name, w.Code, w.Header().Get("Content-Type"), w.Body.String(), tc.status, tc.body)
		}
	}
}
