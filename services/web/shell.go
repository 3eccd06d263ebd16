package web

import (
	"net"
	"net/http"
	"strings"
)

// shellQuote makes s one word of a POSIX shell command line: as it is
// when it holds only characters no shell treats specially, else in
// single quotes, where a single quote inside ends the quoting, is
// escaped with a backslash and starts it again.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shellLine joins words into a command line, quoting each.
func shellLine(words ...string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = shellQuote(w)
	}
	return strings.Join(q, " ")
}

// requestHost is the host name the browser reached the appliance by,
// without a port: what a device on the same network uses too.
func requestHost(r *http.Request) string {
	h := r.Host
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if h == "" {
		return "localhost"
	}
	return h
}

// baseURL is the scheme and host the browser used: the appliance's HTTP
// or HTTPS listener as reachable from the user's network.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// portOf is the port of a listener address (":1883", "127.0.0.1:1883").
func portOf(addr string) string {
	if _, p, err := net.SplitHostPort(addr); err == nil {
		return p
	}
	return ""
}
