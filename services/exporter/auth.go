package exporter

import (
	"net/http"

	"github.com/piot-appliance/piot/internal/httpx"
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
		tok, ok := httpx.BearerToken(r)
		if !ok || len(tok) > maxTokenLen {
			return Scope{}, false
		}
		return core.ResolveMetricsToken(global, tok, orgToken)
	}
}
