// Package httpx is what every PIOT HTTP endpoint does the same way: read
// the bearer token of a request, and answer in the JSON envelope the
// original system's devices and clients parse.
//
// It lives under internal/ because its users sit on both sides of the line
// the edge adapter must not cross: the device protocols (shared with the
// edge adapter), the API, the metrics exporter and the composition root's
// endpoints. It imports nothing of the program.
package httpx
