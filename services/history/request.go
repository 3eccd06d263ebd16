package history

import (
	"context"
	"fmt"

	"github.com/piot-appliance/piot/services/store"
)

// MaxReadings bounds (and is the default of) Request.First: the most
// readings one request returns to a front end.
const MaxReadings = 10000

// KindFor is the series a thing of type thingType reports unless a front
// end asks for another: a sensor its values, a switch its states, a
// device its location.
func KindFor(thingType string) string {
	switch thingType {
	case "sensor":
		return KindSensor
	case "switch":
		return KindSwitch
	}
	return KindLocation
}

// Request is one readings query as the front ends (the GraphQL readings
// field, the web manager's history page) take it from their callers:
// every argument optional, checked here in one way for all of them.
type Request struct {
	Kind           string
	From, To, Step int64
	Fn             Fn
	First          int
}

// RequestError is a request refused for its arguments; its Error is the
// message to show the caller. errors.Is(err, ErrBadQuery) holds.
type RequestError struct{ Msg string }

func (e *RequestError) Error() string { return e.Msg }

// Is makes a RequestError an ErrBadQuery.
func (e *RequestError) Is(target error) bool { return target == ErrBadQuery }

// NewRequest checks the arguments of a readings query of a thing of type
// thingType: the kind defaults to KindFor, fn to avg, first to
// MaxReadings; from and to as Query takes them.
func NewRequest(thingType string, kind *string, from, to, step *int64, fn *Fn, first *int64) (Request, error) {
	q := Request{Kind: KindFor(thingType), First: MaxReadings, Fn: FnAvg}
	if kind != nil {
		if !ValidKind(*kind) {
			return q, &RequestError{"kind must be sensor, switch, location or battery"}
		}
		q.Kind = *kind
	}
	if from != nil {
		q.From = *from
	}
	if to != nil {
		q.To = *to
	}
	if step != nil {
		if *step < 0 {
			return q, &RequestError{"step must not be negative"}
		}
		q.Step = *step
	}
	if fn != nil {
		q.Fn = *fn
	}
	if first != nil {
		if *first < 1 || *first > MaxReadings {
			return q, &RequestError{fmt.Sprintf("first must be between 1 and %d", MaxReadings)}
		}
		q.First = int(*first)
	}
	return q, nil
}

// Run answers a checked request for one thing (Query with its fields).
func (s *Store) Run(ctx context.Context, thing store.ID, q Request) ([]Reading, error) {
	return s.Query(ctx, thing, q.Kind, q.From, q.To, q.Step, q.Fn, q.First)
}

// steps are the bucket widths StepFor picks from: whole minutes below an
// hour, whole hours above (answered from the daily rollups).
var steps = []int64{
	60, 2 * 60, 5 * 60, 10 * 60, 15 * 60, 30 * 60,
	hourSecs, 2 * hourSecs, 3 * hourSecs, 6 * hourSecs, 12 * hourSecs, daySecs,
}

// StepFor is the step that divides span seconds into at most n buckets:
// the smallest of the usual widths (1, 2, 5, 10, 15, 30 minutes, 1, 2, 3,
// 6, 12 hours, a day) that does, else whole days; whole-hour steps read
// the rollups instead of every raw point.
func StepFor(span int64, n int) int64 {
	if n < 1 {
		n = 1
	}
	want := max((span+int64(n)-1)/int64(n), 1)
	for _, s := range steps {
		if s >= want {
			return s
		}
	}
	return (want + daySecs - 1) / daySecs * daySecs
}
