// Package graph is the GraphQL API of the appliance: the schema
// (schema.graphqls), thin resolvers that call core as the caller found in
// the request context, and NewHandler, which serves them with limits on
// query depth and complexity.
//
// Resolvers hold no authorization logic: every rule lives in core.
package graph

import (
	"context"

	"github.com/piot-appliance/piot/services/api/graph/model"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
	"github.com/piot-appliance/piot/services/monitor"
)

// Resolver is the root resolver; it serves every request with the actor
// carried by the request context (core.ActorFrom).
type Resolver struct {
	Core *core.Core
	// History answers readings; nil means the appliance keeps none.
	History *history.Store
	// Monitor answers alarms; nil means no monitor runs.
	Monitor *monitor.Monitor
	// System answers the system query; the composition root knows the
	// slots and the update outcome.
	System func(context.Context) (*model.System, error)
}
