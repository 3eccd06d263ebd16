package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// A resolver error caused by the request's deadline is reported as the
// timeout it is, not logged as an internal error.
func TestPresenterReportsTheDeadline(t *testing.T) {
	var logs bytes.Buffer
	present := presenter(slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithDeadlineCause(context.Background(), time.Now().Add(-time.Second), core.ErrDeadline)
	defer cancel()
	driverErr := fmt.Errorf("history: query: %w", context.DeadlineExceeded)
	got := present(ctx, driverErr)
	if got.Extensions["code"] != string(core.CodeTimeout) || got.Message != core.ErrDeadline.Msg {
		t.Fatalf("%+v", got)
	}
	// The client going away is not an internal error either.
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if got := present(cctx, errors.New("connection closed")); got.Extensions["code"] != string(core.CodeTimeout) {
		t.Fatalf("%+v", got)
	}
	if logs.Len() != 0 {
		t.Fatalf("logged: %s", logs.String())
	}
}
