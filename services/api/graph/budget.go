package graph

import (
	"context"
	"fmt"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/piot-appliance/piot/services/core"
)

// DefaultMaxRows is the default of Options.MaxRows: two full-size charts.
const DefaultMaxRows = 2 * MaxReadings

// rowBudget is what one request may still read from history. Root query
// fields run concurrently, so it is shared under a lock; each readings
// field reserves its `first` before it queries, so the request never
// holds more than its budget in memory. Reservations are not given back
// when a query returns fewer rows: whether a request passes then depends
// only on what it asks for, not on the data or on the order its fields
// happen to run in.
type rowBudget struct {
	mu   sync.Mutex
	left int
	max  int
}

type budgetKey struct{}

// withRowBudget gives every operation a fresh budget of max rows.
func withRowBudget(max int) graphql.OperationMiddleware {
	return func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		return next(context.WithValue(ctx, budgetKey{}, &rowBudget{left: max, max: max}))
	}
}

// reserveRows takes n rows from the request's budget. Without a budget
// (resolver tests) nothing is limited.
func reserveRows(ctx context.Context, n int) error {
	b, _ := ctx.Value(budgetKey{}).(*rowBudget)
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.left {
		return core.NewError(core.CodeBadInput, fmt.Sprintf(
			"this request reads more than %d history rows; ask for fewer (first:) or split it", b.max))
	}
	b.left -= n
	return nil
}
