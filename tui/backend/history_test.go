package backend

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
	"github.com/piot-appliance/piot/tui"
)

// The History screen's series: min, max and avg per step from the
// readings requests, the raw readings, locations, and core's scoping.
func TestHistorySeries(t *testing.T) {
	s := startStack(t, false)
	a, b := newTenant(t, "sera"), newTenant(t, "serb")
	mine := sensorThing(t, nil, a, "mine")
	theirs := sensorThing(t, nil, b, "theirs")
	member := newMember(t, a.org.ID)
	hour := time.Now().Unix() / 3600 * 3600
	t0 := hour - 3600
	var pts []history.Point
	for i := range 12 {
		// Two readings per 5 minutes: 10+i and 20+i.
		ts := t0 + int64(i*300)
		pts = append(pts,
			history.Point{Thing: mine.ID, Kind: history.KindSensor, TS: ts, Value: fmt.Sprint(10 + i), Seq: uint64(2*i + 1)},
			history.Point{Thing: mine.ID, Kind: history.KindSensor, TS: ts + 60, Value: fmt.Sprint(20 + i), Seq: uint64(2*i + 2)},
			history.Point{Thing: theirs.ID, Kind: history.KindSensor, TS: ts, Value: "7", Seq: uint64(i + 1)},
			history.Point{Thing: mine.ID, Kind: history.KindLocation, TS: ts, Value: fmt.Sprintf(`{"lat":52.%d,"lng":13.4}`, i), Seq: uint64(i + 1)})
	}
	if err := s.hist.Append(context.Background(), pts); err != nil {
		t.Fatal(err)
	}
	h := NewHistory(fx.c, s.hist, func() time.Time { return time.Unix(hour, 0) })
	ctx := context.Background()
	q := tui.SeriesQuery{Kind: history.KindSensor, From: time.Unix(t0, 0), To: time.Unix(hour-1, 0), Steps: 12}

	got, err := h.Series(ctx, member, mine.ID, q)
	if err != nil {
		t.Fatal(err)
	}
	if got.Step != 5*time.Minute || len(got.Steps) != 12 || len(got.Readings) != 24 || got.Truncated {
		t.Fatalf("step %v, %d steps, %d readings, truncated %v", got.Step, len(got.Steps), len(got.Readings), got.Truncated)
	}
	if st := got.Steps[3]; st.Start.Unix() != t0+900 || st.Min != 13 || st.Max != 23 || st.Avg != 18 {
		t.Errorf("step 3 = %+v", st)
	}
	if r := got.Readings[1]; r.Time.Unix() != t0+60 || r.Value != "20" {
		t.Errorf("reading 1 = %+v", r)
	}

	q.Kind = history.KindLocation
	loc, err := h.Series(ctx, member, mine.ID, q)
	if err != nil || len(loc.Readings) != 12 || len(loc.Steps) != 0 || loc.Readings[2].Value != `{"lat":52.2,"lng":13.4}` {
		t.Errorf("locations: %+v %v", loc, err)
	}

	q.Kind = history.KindSensor
	if _, err := h.Series(ctx, member, theirs.ID, q); core.CodeOf(err) != core.CodeForbidden && core.CodeOf(err) != core.CodeNotFound {
		t.Errorf("another org's thing: %v, want FORBIDDEN or NOT_FOUND", err)
	}
	if _, err := h.Series(ctx, fx.admin, theirs.ID, q); err != nil {
		t.Errorf("admin: %v", err)
	}
	if _, err := h.Series(ctx, member, mine.ID, tui.SeriesQuery{Kind: "weather", From: q.From, To: q.To}); core.CodeOf(err) != core.CodeBadInput {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := h.Series(ctx, member, mine.ID, tui.SeriesQuery{Kind: history.KindSensor, From: q.To, To: q.From}); core.CodeOf(err) != core.CodeBadInput {
		t.Errorf("reversed range: %v", err)
	}
}

// Logs: admins get the whole ring and the count of lines ever logged;
// core refuses everybody else.
func TestSystemLogs(t *testing.T) {
	ring := NewLogRing(3, slog.LevelInfo)
	log := slog.New(ring.Handler())
	for i := range 5 {
		log.Info("line", "n", i)
	}
	log.Info("ssh console listening", "password_auth", false, "password", "hunter22")
	if tail := ring.Tail(1)[0]; !strings.Contains(tail, "password_auth=false") || !strings.Contains(tail, "password=[redacted]") {
		t.Errorf("a flag is shown, a secret is not: %q", tail)
	}
	sys := NewSystem(SystemConfig{Core: fx.c, Logs: ring})
	snap, err := sys.Logs(context.Background(), fx.admin)
	if err != nil || snap.Total != 6 || len(snap.Lines) != 3 || !strings.Contains(snap.Lines[0], "n=3") || !strings.Contains(snap.Lines[2], "ssh console") {
		t.Fatalf("admin: %+v %v", snap, err)
	}
	tn := newTenant(t, "logs")
	snap, err = sys.Logs(context.Background(), newMember(t, tn.org.ID))
	if core.CodeOf(err) != core.CodeForbidden || len(snap.Lines) != 0 {
		t.Fatalf("member: %+v %v", snap, err)
	}
	if _, err := NewSystem(SystemConfig{Core: fx.c}).Logs(context.Background(), fx.admin); err == nil {
		t.Error("no ring: want unsupported")
	}
}
