package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/api/graph"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
)

// historyEnv is env with a history store holding n readings of one
// sensor thing.
func historyEnv(t *testing.T, opts graph.Options, n int) (*env, string) {
	t.Helper()
	e := newEnv(t, opts)
	h, err := history.New(e.st, history.Config{})
	if err != nil {
		t.Fatal(err)
	}
	opts.History = h
	e.h = graph.NewHandler(e.core, opts)
	id := e.createThing("T1", "sensor")
	tid, _ := core.ParseID(id)
	pts := make([]history.Point, n)
	start := time.Now().Unix() - int64(n)
	for i := range pts {
		pts[i] = history.Point{Thing: tid, Kind: history.KindSensor, TS: start + int64(i), Value: "21.5"}
	}
	if err := h.Append(context.Background(), pts); err != nil {
		t.Fatal(err)
	}
	return e, id
}

// One request may read at most MaxRows history rows over all its readings
// fields (issue 11): each reserves its first before it runs, and one that
// finds the budget spent fails with a clear error instead of reading.
func TestReadingsRowBudgetPerRequest(t *testing.T) {
	e, id := historyEnv(t, graph.Options{MaxRows: 2500}, 3000)
	q := `query($id: ID!) {
		a: readings(thingId: $id, from: 1, step: 0, first: 1000) { ts }
		b: readings(thingId: $id, from: 1, step: 0, first: 1000) { ts }
		c: readings(thingId: $id, from: 1, step: 0, first: 1000) { ts } }`
	resp := e.do(e.admin, q, map[string]any{"id": id})
	if len(resp.Errors) != 1 || resp.code() != "BAD_USER_INPUT" ||
		!strings.Contains(resp.Errors[0].Message, "this request reads more than 2500 history rows") {
		t.Fatalf("errors %+v", resp.Errors)
	}
	// Two of them fit, in the same request and again in the next: the
	// budget is per request.
	two := `query($id: ID!) {
		a: readings(thingId: $id, from: 1, step: 0, first: 1000) { ts }
		b: readings(thingId: $id, from: 1, step: 0, first: 1000) { ts } }`
	for i := 0; i < 2; i++ {
		var data map[string][]struct{ Ts int64 }
		e.data(e.admin, two, map[string]any{"id": id}, &data)
		if len(data["a"]) != 1000 || len(data["b"]) != 1000 {
			t.Fatalf("%d and %d readings", len(data["a"]), len(data["b"]))
		}
	}
	// The budget is per request.
	for i := 0; i < 3; i++ {
		var one struct{ Readings []struct{ Ts int64 } }
		e.data(e.admin, `query($id: ID!) { readings(thingId: $id, from: 1, step: 0, first: 2500) { ts } }`, map[string]any{"id": id}, &one)
		if len(one.Readings) != 2500 {
			t.Fatalf("%d readings", len(one.Readings))
		}
	}
}

// A request stopped by its deadline says so (TIMEOUT), not "internal
// error".
func TestReadingsDeadlineIsATimeout(t *testing.T) {
	e, id := historyEnv(t, graph.Options{}, 10)
	body, _ := json.Marshal(map[string]any{"query": `query($id: ID!) { readings(thingId: $id, from: 1, step: 0) { ts } }`,
		"variables": map[string]any{"id": id}})
	ctx, cancel := context.WithDeadlineCause(core.WithActor(context.Background(), e.admin), time.Now().Add(-time.Second), core.ErrDeadline)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	var resp response
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.code() != "TIMEOUT" || !strings.Contains(resp.Errors[0].Message, "time limit") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if strings.Contains(e.logs.String(), "internal error") {
		t.Fatalf("a timeout logged as an internal error: %s", e.logs)
	}
}
