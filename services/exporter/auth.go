package exporter

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/piot-appliance/piot/internal/httpx"
	"github.com/piot-appliance/piot/services/core"
)

// maxTokenLen bounds what is hashed and looked up per request.
const maxTokenLen = 512

// BearerAuthorizer lets in scrapers that send `Authorization: Bearer
// <token>`: the global token sees everything; a token orgToken resolves
// sees its org's things. An empty global token matches nothing, and a nil
// orgToken knows no org tokens.
//
// The global token is compared in constant time, on SHA-256 digests so that
// not even its length shows. Org tokens are looked up by orgToken (core
// keeps only their hashes).
func BearerAuthorizer(global string, orgToken func(token string) (core.ID, bool)) Authorizer {
	var want [sha256.Size]byte
	if global != "" {
		want = sha256.Sum256([]byte(global))
	}
	return func(r *http.Request) (Scope, bool) {
		tok, ok := httpx.BearerToken(r)
		if !ok || len(tok) > maxTokenLen {
			return Scope{}, false
		}
		got := sha256.Sum256([]byte(tok))
		if global != "" && subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return Scope{All: true}, true
		}
		if orgToken != nil {
			if id, ok := orgToken(tok); ok && !id.IsZero() {
				return Scope{OrgID: id}, true
			}
		}
		return Scope{}, false
	}
}
