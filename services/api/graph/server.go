package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/piot-appliance/piot/services/api/graph/generated"
	"github.com/piot-appliance/piot/services/api/graph/model"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
	"github.com/piot-appliance/piot/services/monitor"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Defaults of Options.
const (
	DefaultMaxDepth      = 10
	DefaultMaxComplexity = 500
	queryCacheSize       = 1000
)

// Options tunes the GraphQL handler.
type Options struct {
	// History answers the readings query.
	History *history.Store
	// Monitor answers alarms and acknowledgeAlarm.
	Monitor *monitor.Monitor
	// System answers the system query (the version and the update status,
	// admins only); nil answers the version the handler was built with.
	System func(context.Context) (*model.System, error)
	// MaxDepth bounds how deeply fields may nest; a query deeper than that
	// is refused before it runs with extensions.code BAD_USER_INPUT and the
	// message "query depth N exceeds the limit of M". The depth is the
	// longest chain of nested fields, leaf included ({ userProfile { email } }
	// has depth 2); fragments and inline fragments count as the fields they
	// contain. Introspection fields (__schema, __type, __typename) are not
	// counted: their depth is bounded by the schema and by gqlparser's own
	// introspection-depth rule, and they are only open to authenticated
	// callers. 0 means DefaultMaxDepth (10); the original manager and CLI
	// need at most 3.
	MaxDepth int
	// MaxComplexity bounds gqlgen's complexity score (one point per
	// selected field, including nested ones); a query above it is refused
	// before it runs with extensions.code BAD_USER_INPUT and the message
	// "operation has complexity N, which exceeds the limit of M". 0 means
	// DefaultMaxComplexity (500).
	MaxComplexity int
	// MaxRows bounds the history rows one request may read over all its
	// readings fields (0: DefaultMaxRows). Each readings field reserves
	// its first (default MaxReadings) before it runs, whatever it then
	// returns; one that finds the budget spent fails with BAD_USER_INPUT
	// instead of reading.
	MaxRows int
	// Logger receives internal errors and recovered panics; nil means
	// slog.Default().
	Logger *slog.Logger
}

// NewHandler returns the GraphQL endpoint (the original `/query`). It
// serves POST requests with a JSON body only (OPTIONS/CORS are the
// router's business) and runs every operation as the actor carried by the
// request context (core.WithActor), which the auth middleware in front of
// it must set; without one the caller is anonymous.
//
// Errors: core's errors keep their client-safe message and carry their
// code in extensions.code (UNAUTHENTICATED, FORBIDDEN, NOT_FOUND,
// BAD_USER_INPUT, CONFLICT, INTERNAL_SERVER_ERROR); any other error is
// logged and reported as "internal error" (INTERNAL_SERVER_ERROR); parse
// and validation errors keep gqlgen's GRAPHQL_PARSE_FAILED and
// GRAPHQL_VALIDATION_FAILED. A panicking resolver is logged and answered
// with an internal error; the process keeps running. Introspection is
// only available to authenticated callers (UNAUTHENTICATED otherwise).
func NewHandler(c *core.Core, opts Options) http.Handler {
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = DefaultMaxDepth
	}
	if opts.MaxComplexity <= 0 {
		opts.MaxComplexity = DefaultMaxComplexity
	}
	if opts.MaxRows <= 0 {
		opts.MaxRows = DefaultMaxRows
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}

	cfg := generated.Config{Resolvers: &Resolver{Core: c, History: opts.History, Monitor: opts.Monitor, System: opts.System}}
	cfg.Complexity.Query.Readings = readingsComplexity
	cfg.Complexity.Query.AuditLog = auditLogComplexity
	srv := handler.New(generated.NewExecutableSchema(cfg))
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](queryCacheSize))
	srv.Use(tokenLimit{max: MaxQueryTokens})
	srv.Use(introspectionGate{})
	srv.Use(depthLimit{max: opts.MaxDepth})
	srv.Use(complexityLimit{extension.FixedComplexityLimit(opts.MaxComplexity)})
	srv.AroundOperations(reportInterrupted)
	srv.AroundOperations(withRowBudget(opts.MaxRows))
	srv.SetErrorPresenter(presenter(log))
	srv.AroundResponses(capErrors)
	srv.SetRecoverFunc(func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "graphql: panic in resolver",
			"panic", fmt.Sprint(p), "path", graphql.GetPath(ctx).String(), "stack", string(debug.Stack()))
		return &core.Error{Code: core.CodeInternal, Msg: "internal error"}
	})
	return srv
}

// presenter turns resolver errors into client errors: core's own message
// and code, or a logged, opaque internal error.
func presenter(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		if ctx.Err() != nil {
			err = interrupted(ctx)
		}
		var ce *core.Error
		if errors.As(err, &ce) {
			gerr := graphql.DefaultErrorPresenter(ctx, err)
			code := core.CodeOf(err)
			if code == core.CodeInternal && ce.Err != nil { // recovered panics are logged already
				log.ErrorContext(ctx, "graphql: internal error",
					"path", graphql.GetPath(ctx).String(), "err", ce.Error())
			}
			gerr.Message = core.Message(err)
			gerr.Err = nil // the cause is for the log only
			errcode.Set(gerr, string(code))
			return gerr
		}
		var gqlErr *gqlerror.Error
		if errors.As(err, &gqlErr) && gqlErr.Err == nil {
			// Made by gqlgen/gqlparser or by our extensions for the client.
			return gqlErr
		}
		log.ErrorContext(ctx, "graphql: internal error",
			"path", graphql.GetPath(ctx).String(), "err", err.Error())
		gerr := gqlerror.WrapPath(graphql.GetPath(ctx), errors.New("internal error"))
		gerr.Err = nil
		if gqlErr != nil {
			gerr.Locations = gqlErr.Locations
		}
		errcode.Set(gerr, string(core.CodeInternal))
		return gerr
	}
}

// interrupted is the error of work stopped by its request's end: the
// deadline (the context's cause, core.ErrDeadline) or the client leaving.
func interrupted(ctx context.Context) *core.Error {
	var ce *core.Error
	if errors.As(context.Cause(ctx), &ce) {
		return ce
	}
	return core.NewError(core.CodeTimeout, "request cancelled")
}

// reportInterrupted answers an operation whose request ended before it
// could run with that reason; gqlgen would answer a bare null.
func reportInterrupted(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	rh := next(ctx)
	return func(ctx context.Context) *graphql.Response {
		resp := rh(ctx)
		if resp == nil && ctx.Err() != nil {
			ce := interrupted(ctx)
			err := gqlerror.Errorf("%s", ce.Msg)
			errcode.Set(err, string(ce.Code))
			return &graphql.Response{Errors: gqlerror.List{err}}
		}
		return resp
	}
}

// introspectionGate allows introspection to authenticated callers only and
// refuses anonymous introspection queries with a clear error (rather than
// gqlgen's bare "introspection disabled" field error).
type introspectionGate struct{}

var _ interface {
	graphql.OperationContextMutator
	graphql.HandlerExtension
} = introspectionGate{}

func (introspectionGate) ExtensionName() string                   { return "IntrospectionGate" }
func (introspectionGate) Validate(graphql.ExecutableSchema) error { return nil }

func (introspectionGate) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	opCtx.DisableIntrospection = !core.ActorFrom(ctx).Authenticated()
	if opCtx.DisableIntrospection && introspects(opCtx.Operation.SelectionSet, map[string]bool{}) {
		err := gqlerror.Errorf("introspection requires authentication")
		errcode.Set(err, string(core.CodeUnauthenticated))
		return err
	}
	return nil
}

// introspects reports whether a root selection set asks for __schema or
// __type (directly or through fragments).
func introspects(ss ast.SelectionSet, seen map[string]bool) bool {
	for _, sel := range ss {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" {
				return true
			}
		case *ast.InlineFragment:
			if introspects(s.SelectionSet, seen) {
				return true
			}
		case *ast.FragmentSpread:
			if s.Definition != nil && !seen[s.Name] {
				seen[s.Name] = true
				if introspects(s.Definition.SelectionSet, seen) {
					return true
				}
			}
		}
	}
	return false
}

// depthLimit refuses operations nested deeper than max (see
// Options.MaxDepth).
type depthLimit struct{ max int }

var _ interface {
	graphql.OperationContextMutator
	graphql.HandlerExtension
} = depthLimit{}

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	m := depthMeter{fragments: map[string]int{}}
	if depth := m.depth(opCtx.Operation.SelectionSet); depth > d.max {
		err := gqlerror.Errorf("query depth %d exceeds the limit of %d", depth, d.max)
		errcode.Set(err, string(core.CodeBadInput))
		return err
	}
	return nil
}

// depthMeter measures selection depth, computing each fragment once so
// that fragments spread many times cannot make the walk exponential.
type depthMeter struct {
	fragments map[string]int // name -> depth; -1 while being measured
}

func (m depthMeter) depth(ss ast.SelectionSet) int {
	deepest := 0
	for _, sel := range ss {
		d := 0
		switch s := sel.(type) {
		case *ast.Field:
			if len(s.Name) > 1 && s.Name[:2] == "__" {
				continue // introspection (bounded by the schema) or __typename (a leaf)
			}
			d = 1 + m.depth(s.SelectionSet)
		case *ast.InlineFragment:
			d = m.depth(s.SelectionSet)
		case *ast.FragmentSpread:
			if s.Definition == nil {
				continue
			}
			known, ok := m.fragments[s.Name]
			switch {
			case ok && known < 0:
				continue // a cycle; validation refuses those anyway
			case ok:
				d = known
			default:
				m.fragments[s.Name] = -1
				d = m.depth(s.Definition.SelectionSet)
				m.fragments[s.Name] = d
			}
		}
		deepest = max(deepest, d)
	}
	return deepest
}

// MaxErrors bounds the errors of one answer; a query can be made to
// fail validation thousands of times over.
const MaxErrors = 20

// capErrors keeps the first MaxErrors errors and says how many more there
// were.
func capErrors(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp == nil || len(resp.Errors) <= MaxErrors {
		return resp
	}
	more := gqlerror.Errorf("%d more errors not shown", len(resp.Errors)-MaxErrors)
	errcode.Set(more, string(core.CodeBadInput))
	resp.Errors = append(resp.Errors[:MaxErrors:MaxErrors], more)
	return resp
}

// RowsPerPoint is how many history rows one complexity point buys.
const RowsPerPoint = 100

// readingsComplexity counts what a readings field can return: its fields
// once per RowsPerPoint rows of first (MaxReadings when absent). Counted
// as one field, 330 aliases of readings(first: 10000) passed the limit,
// took minutes and gigabytes, and starved the store for every tenant.
func readingsComplexity(child int, _ string, _, _, _ *int64, _ *model.ReadingFn, first *int64, _ *string) int {
	rows := int64(MaxReadings)
	if first != nil && *first > 0 && *first < rows {
		rows = *first
	}
	return 1 + child*int((rows+RowsPerPoint-1)/RowsPerPoint)
}

// auditLogComplexity counts an auditLog field like readings: its fields
// once per RowsPerPoint entries of first (core.MaxAuditEntries when
// absent), so that aliases cannot multiply the scans of the trail.
func auditLogComplexity(child int, first, _, _ *int64) int {
	rows := int64(core.MaxAuditEntries)
	if first != nil && *first > 0 && *first < rows {
		rows = *first
	}
	return 1 + child*int((rows+RowsPerPoint-1)/RowsPerPoint)
}

// complexityLimit is gqlgen's fixed complexity limit with the error code
// of every other refused query, BAD_USER_INPUT.
type complexityLimit struct{ *extension.ComplexityLimit }

func (c complexityLimit) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	err := c.ComplexityLimit.MutateOperationContext(ctx, opCtx)
	if err != nil {
		errcode.Set(err, string(core.CodeBadInput))
	}
	return err
}
