package exporter

import (
	"net/http"
	"strings"

	"github.com/piot-appliance/piot/services/core"
)

// maxTokenLen bounds what is hashed and looked up per request.
const maxTokenLen = 512

// BearerAuthorizer lets in scrapers that send `Authorization: Bearer
// <token>`; core decides what the token sees (ResolveMetricsToken): the
// global token everything, a token orgToken resolves its org's things. An
// empty global token matches nothing, and a nil orgToken knows no org
// tokens.
func BearerAuthorizer(global string, orgToken func(token string) (core.ID, bool)) Authorizer {
	return func(r *http.Request) (Scope, bool) {
		tok, ok := bearerToken(r)
		if !ok {
			return Scope{}, false
		}
		return core.ResolveMetricsToken(global, tok, orgToken)
	}
}

// bearerToken returns the token of an Authorization header with the Bearer
// scheme (matched case-insensitively, RFC 7235).
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || len(tok) > maxTokenLen {
		return "", false
	}
	return tok, true
}
