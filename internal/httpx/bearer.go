package httpx

import (
	"net/http"
	"strings"
)

// BearerToken returns the token of the request's Authorization header with
// the Bearer scheme (matched case-insensitively, RFC 7235), the only place
// a token is accepted: URLs end up in logs and browser history. Space
// around the token is dropped; an empty token is none.
func BearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
