package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/piot-appliance/piot/services/core"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/lexer"
)

// MaxQueryTokens bounds a query's tokens (names, punctuation, values)
// before it is parsed and validated. Validation grows with the square of
// repeated fields: 60 000 repetitions of one field kept a core busy for
// five minutes, a directive bomb made an 8.6 MB error answer. GraphiQL's
// introspection query has about 400 tokens; the appliance's own clients
// far fewer.
const MaxQueryTokens = 3000

// tokenLimit refuses a query with more than max tokens before gqlgen
// parses it; the lexer alone is linear and stops counting at the limit.
type tokenLimit struct{ max int }

var _ interface {
	graphql.OperationParameterMutator
	graphql.HandlerExtension
} = tokenLimit{}

func (tokenLimit) ExtensionName() string                   { return "TokenLimit" }
func (tokenLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (l tokenLimit) MutateOperationParameters(_ context.Context, p *graphql.RawParams) *gqlerror.Error {
	lx := lexer.New(&ast.Source{Input: p.Query})
	for n := 0; ; n++ {
		tok, err := lx.ReadToken()
		if err != nil || tok.Kind == lexer.EOF {
			return nil // the parser reports syntax errors
		}
		if n >= l.max {
			e := gqlerror.Errorf("query has more than %d tokens", l.max)
			errcode.Set(e, string(core.CodeBadInput))
			return e
		}
	}
}
