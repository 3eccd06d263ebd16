package core

import "context"

type actorKey struct{}

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
