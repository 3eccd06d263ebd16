package httpx

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestBearer(t *testing.T) {
	for header, want := range map[string]string{
		"Bearer abc.def.ghi":    "abc.def.ghi",
		"bearer abc":            "abc",
		"BEARER   abc  ":        "abc",
		"":                      "",
		"Bearer":                "",
		"Bearer ":               "",
		"Bearer    ":            "",
		"Bearerabc":             "",
		"Basic YWRtaW46cHc=":    "",
		"Token abc":             "",
		"abc.def.ghi":           "",
		" Bearer abc":           "",
		"Bearer\tabc":           "",
		"Bearer abc def":        "abc def", // one token, refused by the parser
		"Bearer Bearer abc":     "Bearer abc",
		"Bearer \"abc.def.gh\"": "\"abc.def.gh\"",
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		tok, ok := BearerToken(r)
		if ok != (want != "") || tok != want {
			t.Errorf("BearerToken(%q) = %q, %v; want %q", header, tok, ok, want)
		}
	}
}
