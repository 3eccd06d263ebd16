package core

import "context"

type (
	actorKey  struct{}
	sourceKey struct{}
)

// WithActor returns a context carrying the caller; the API's auth
// middleware and the console's session set it.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the caller carried by ctx, Anonymous if none.
func ActorFrom(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	return a
}

// Source is where a change comes from, for the audit trail: the front end
// (one of the Via constants) and the remote address when known.
type Source struct {
	Via  string
	Addr string
}

// The front ends a change comes through.
const (
	ViaAPI     = "api"
	ViaConsole = "console"
	ViaWeb     = "web"
	ViaCLI     = "cli"
	ViaAdapter = "adapter"
)

// CLIUserAgent is the User-Agent of piot admin's API requests, by which
// the API tells its changes from other clients'.
const CLIUserAgent = "piot-admin"

// String is the source as the audit trail shows it: "api 10.0.0.5:51234".
func (s Source) String() string {
	switch {
	case s.Addr == "":
		return s.Via
	case s.Via == "":
		return s.Addr
	}
	return s.Via + " " + s.Addr
}

// WithSource returns a context carrying where the request came from; the
// front ends set it beside the actor.
func WithSource(ctx context.Context, s Source) context.Context {
	return context.WithValue(ctx, sourceKey{}, s)
}

// SourceFrom returns the source carried by ctx, the zero Source if none.
func SourceFrom(ctx context.Context) Source {
	s, _ := ctx.Value(sourceKey{}).(Source)
	return s
}
