// Package scalar holds the GraphQL marshalers for core types that the
// generated code binds to.
package scalar

import (
	"io"
	"strconv"

	"github.com/99designs/gqlgen/graphql"
	"github.com/piot-appliance/piot/services/core"
)

// MarshalObjectID writes an ID as its 24-digit hex form (the zero ID as
// "000000000000000000000000", as the original server did).
func MarshalObjectID(id core.ID) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		_, _ = io.WriteString(w, strconv.Quote(id.Hex()))
	})
}

// UnmarshalObjectID reads an ID given as a hex string. The schema binds
// inputs to strings, so this only completes the marshaler pair.
func UnmarshalObjectID(v any) (core.ID, error) {
	s, _ := v.(string)
	return core.ParseID(s)
}
