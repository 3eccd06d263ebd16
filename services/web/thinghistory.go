package web

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
)

// chartBuckets is about how many steps a history chart has.
const chartBuckets = 120

// maxTableRows bounds the readings table (the newest are shown).
const maxTableRows = 100

// timeRanges are the picker's fixed ranges, ending now.
var timeRanges = []struct {
	Key   string
	Label string
	Span  int64
}{
	{"1h", "1 hour", 3600}, {"24h", "24 hours", 86400}, {"7d", "7 days", 7 * 86400}, {"30d", "30 days", 30 * 86400},
}

// inputTime is the form of <input type="datetime-local">, read as UTC.
const inputTime = "2006-01-02T15:04"

type rangeLink struct {
	Label, Href string
	Current     bool
}

type readingRow struct {
	TS    int64
	Value string
}

type historyData struct {
	T           core.Thing
	Kind        string
	Kinds       []rangeLink
	Ranges      []rangeLink
	Custom      bool
	From, To    int64
	FromInput   string
	ToInput     string
	Step        string
	Unit        string
	Chart       svgChart
	Track       geoChart
	IsTrack     bool
	Rows        []readingRow
	Total       int
	Min, Max    string
	Avg         string
	Points      int
	Unavailable bool
}

// kindsOf are the series a thing has: what its type reports, and its
// battery and location when it tracks them (a device always may).
func kindsOf(t core.Thing) []string {
	ks := []string{history.KindFor(t.Type)}
	if ks[0] != history.KindLocation && (t.LocTracking || t.Type == core.ThingDevice) {
		ks = append(ks, history.KindLocation)
	}
	if t.BatteryLevelTracking || t.Type == core.ThingDevice {
		ks = append(ks, history.KindBattery)
	}
	return ks
}

// historyRange reads the picker: a fixed range ending now, or custom
// from/to (UTC).
func historyRange(q url.Values, now time.Time) (key string, from, to int64, err error) {
	key = q.Get("range")
	if key == "custom" {
		f, err1 := time.Parse(inputTime, q.Get("from"))
		t, err2 := time.Parse(inputTime, q.Get("to"))
		if err1 != nil || err2 != nil {
			return key, 0, 0, core.NewError(core.CodeBadInput, "Give the custom range as two dates and times (from and to).")
		}
		if !t.After(f) {
			return key, 0, 0, core.NewError(core.CodeBadInput, "The end of the range must be after its start.")
		}
		if t.Sub(f) > 366*24*time.Hour {
			return key, 0, 0, core.NewError(core.CodeBadInput, "A range spans at most a year.")
		}
		return key, f.Unix(), t.Unix(), nil
	}
	for _, r := range timeRanges {
		if r.Key == key {
			return key, now.Unix() - r.Span, now.Unix(), nil
		}
	}
	return "24h", now.Unix() - 86400, now.Unix(), nil
}

// stepText names a step: "5 min", "1 h", "1 d".
func stepText(s int64) string {
	switch {
	case s%86400 == 0:
		return strconv.FormatInt(s/86400, 10) + " d"
	case s%3600 == 0:
		return strconv.FormatInt(s/3600, 10) + " h"
	case s%60 == 0:
		return strconv.FormatInt(s/60, 10) + " min"
	}
	return strconv.FormatInt(s, 10) + " s"
}

// thingHistory is a thing's history chart: core decides whether the user
// may read it (ReadThingHistory), the history's own request check
// (history.NewRequest, as the GraphQL readings field) takes the
// arguments, and the chart is drawn here as SVG.
func (s *Server) thingHistory(w http.ResponseWriter, r *http.Request, sess *session) {
	id, err := thingID(r)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	q := r.URL.Query()
	key, from, to, err := historyRange(q, time.Now())
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	var d historyData
	err = s.deps.Core.ReadThingHistory(sess.actor, id, func(t core.Thing) error {
		d = historyData{T: t, From: from, To: to, Custom: key == "custom",
			FromInput: time.Unix(from, 0).UTC().Format(inputTime), ToInput: time.Unix(to, 0).UTC().Format(inputTime)}
		var kind *string
		if k := q.Get("kind"); k != "" {
			kind = &k
		}
		step := history.StepFor(to-from, chartBuckets)
		req, err := history.NewRequest(t.Type, kind, &from, &to, &step, nil, nil)
		var bad *history.RequestError
		if errors.As(err, &bad) {
			return core.NewError(core.CodeBadInput, bad.Msg)
		}
		if err != nil {
			return err
		}
		d.Kind, d.Step = req.Kind, stepText(step)
		s.historyLinks(&d, key)
		if s.deps.History == nil {
			d.Unavailable = true
			return nil
		}
		return s.drawHistory(r.Context(), &d, req)
	})
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	s.show(w, r, sess, http.StatusOK, "history", d.T.Name+" · history", "/things", d)
}

// historyLinks fills the picker's links, keeping the other choice.
func (s *Server) historyLinks(d *historyData, key string) {
	base := "/things/" + d.T.ID.Hex() + "/history?"
	for _, rg := range timeRanges {
		v := url.Values{"range": {rg.Key}, "kind": {d.Kind}}
		d.Ranges = append(d.Ranges, rangeLink{Label: rg.Label, Href: base + v.Encode(), Current: rg.Key == key})
	}
	for _, k := range kindsOf(d.T) {
		v := url.Values{"range": {key}, "kind": {k}}
		if key == "custom" {
			v.Set("from", d.FromInput)
			v.Set("to", d.ToInput)
		}
		d.Kinds = append(d.Kinds, rangeLink{Label: k, Href: base + v.Encode(), Current: k == d.Kind})
	}
}

// drawHistory reads the series: for numbers the avg, min and max per
// step (the line and the band), for a location the raw fixes (a track);
// and the raw readings for the table.
func (s *Server) drawHistory(ctx context.Context, d *historyData, req history.Request) error {
	h := s.deps.History
	rows, whole, err := s.newestReadings(ctx, d.T.ID, req)
	if err != nil {
		return err
	}
	d.Total = -1 // unknown: only the newest part of the range was read
	if whole {
		d.Total = len(rows)
	}
	for i := len(rows) - 1; i >= 0 && len(d.Rows) < maxTableRows; i-- {
		d.Rows = append(d.Rows, readingRow{TS: rows[i].TS, Value: readingText(req.Kind, rows[i].Value)})
	}
	switch req.Kind {
	case history.KindSensor:
		d.Unit = d.T.Sensor.Unit
	case history.KindBattery:
		d.Unit = "%"
	}
	if req.Kind == history.KindLocation {
		d.IsTrack = true
		if !whole { // the track is of the whole range (its first MaxReadings fixes)
			raw := req
			raw.Step = 0
			if rows, err = h.Run(ctx, d.T.ID, raw); err != nil {
				return historyErr(err)
			}
		}
		var ps []geoPoint
		for _, x := range rows {
			if lat, lng, ok := fix(x.Value); ok {
				ps = append(ps, geoPoint{Lat: lat, Lng: lng, Label: abstime(x.TS)})
			}
		}
		d.Points = len(ps)
		d.Track = geoPlot(ps, true)
		return nil
	}
	series := map[history.Fn][]history.Reading{}
	for _, fn := range []history.Fn{history.FnAvg, history.FnMin, history.FnMax} {
		q := req
		q.Fn = fn
		if series[fn], err = h.Run(ctx, d.T.ID, q); err != nil {
			return historyErr(err)
		}
	}
	mins, maxs := byTS(series[history.FnMin]), byTS(series[history.FnMax])
	var bs []bucket
	lo, hi, sum := math.Inf(1), math.Inf(-1), 0.0
	for _, a := range series[history.FnAvg] {
		v, ok := number(a.Value)
		if !ok {
			continue
		}
		b := bucket{TS: a.TS, Avg: v, Min: v, Max: v}
		if m, ok := mins[a.TS]; ok {
			b.Min = math.Min(m, v)
		}
		if m, ok := maxs[a.TS]; ok {
			b.Max = math.Max(m, v)
		}
		lo, hi, sum = math.Min(lo, b.Min), math.Max(hi, b.Max), sum+v
		bs = append(bs, b)
	}
	d.Chart = timeChart(bs, d.From, d.To, req.Step, d.Unit, req.Kind == history.KindSwitch)
	// The summary is of the readings themselves when all of them were
	// read (an average of bucket averages would weigh a lone reading like
	// a busy hour), else of the buckets.
	if whole {
		lo, hi, sum, n := math.Inf(1), math.Inf(-1), 0.0, 0
		for _, x := range rows {
			if v, ok := number(x.Value); ok {
				lo, hi, sum, n = math.Min(lo, v), math.Max(hi, v), sum+v, n+1
			}
		}
		if n > 0 {
			d.Min, d.Max, d.Avg = summary(lo, hi, sum/float64(n))
		}
	} else if len(bs) > 0 {
		d.Min, d.Max, d.Avg = summary(lo, hi, sum/float64(len(bs)))
	}
	return nil
}

// summary formats min, max and avg with the decimals their spread needs
// (at least two, trailing zeros dropped).
func summary(lo, hi, avg float64) (string, string, string) {
	dec := 2
	if hi > lo {
		dec = max(decimalsFor(niceStep(hi-lo, 10))+1, 2)
	}
	return trimNum(lo, dec), trimNum(hi, dec), trimNum(avg, dec)
}

// tableWindows are the spans, ending at the range's end, tried one after
// the other for the readings table until one holds a table's worth: a
// busy sensor's last ten minutes are read, not its whole month.
var tableWindows = []int64{600, 3600, 86400}

// newestReadings reads the raw readings at the end of the range, enough
// for the table; whole says they are all the range has (none left out
// before the window or beyond the request's cap).
func (s *Server) newestReadings(ctx context.Context, id core.ID, req history.Request) ([]history.Reading, bool, error) {
	raw := req
	raw.Step = 0
	for _, w := range append(tableWindows[:len(tableWindows):len(tableWindows)], req.To-req.From) {
		raw.From = max(req.From, req.To-w)
		rows, err := s.deps.History.Run(ctx, id, raw)
		if err != nil {
			return nil, false, historyErr(err)
		}
		if len(rows) >= maxTableRows || raw.From == req.From {
			return rows, raw.From == req.From && len(rows) < raw.First, nil
		}
	}
	return nil, false, nil // not reached: the last window is the range
}

func historyErr(err error) error {
	if errors.Is(err, history.ErrBadQuery) {
		return core.NewError(core.CodeBadInput, "invalid history query")
	}
	return err
}

func byTS(rs []history.Reading) map[int64]float64 {
	m := make(map[int64]float64, len(rs))
	for _, r := range rs {
		if v, ok := number(r.Value); ok {
			m[r.TS] = v
		}
	}
	return m
}

func number(s string) (float64, bool) {
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil && !math.IsNaN(v) && !math.IsInf(v, 0)
}

// fix decodes a location reading ({"lat":…,"lng":…}).
func fix(s string) (lat, lng float64, ok bool) {
	var p struct {
		Lat, Lng *float64
	}
	if json.Unmarshal([]byte(s), &p) != nil || p.Lat == nil || p.Lng == nil {
		return 0, 0, false
	}
	return *p.Lat, *p.Lng, *p.Lat >= -90 && *p.Lat <= 90 && *p.Lng >= -180 && *p.Lng <= 180
}

// readingText shows a stored reading: numbers without float noise, a
// switch's 1/0 as on/off, a location as its coordinates.
func readingText(kind, v string) string {
	switch kind {
	case history.KindSwitch:
		switch v {
		case "1":
			return "on"
		case "0":
			return "off"
		}
	case history.KindLocation:
		if lat, lng, ok := fix(v); ok {
			return trimNum(lat, 6) + ", " + trimNum(lng, 6)
		}
	default:
		if f, ok := number(v); ok {
			return trimNum(f, 6)
		}
	}
	return v
}
