package tui

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// formatNumber rounds to four significant digits (never fewer than the
// integer part) so a chart label or an average reads "21.29", not
// "21.285714285714285".
func formatNumber(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	if v == 0 {
		return "0"
	}
	decimals := max(4-int(math.Floor(math.Log10(math.Abs(v))))-1, 0)
	s := strconv.FormatFloat(v, 'f', min(decimals, 8), 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// timeLabel formats a chart's time axis: times of day when the range
// stays within one day, dates and times otherwise.
func timeLabel(t, from, to time.Time) string {
	if from.Format("2006-01-02") == to.Format("2006-01-02") {
		return t.Format("15:04")
	}
	return t.Format("01-02 15:04")
}

// The charts are drawn here rather than with ntcharts: its releases
// (v0.4.0) build on Bubble Tea and Lip Gloss v1, a second copy of both
// beside the console's v2, for two static plots that need no model.

// stepChart draws the steps from..to as columns: a bar from each
// column's minimum to its maximum, "●" at its average; a y axis with
// labels in unit on the left, a time axis below. It returns exactly
// height lines of at most width cells (fewer than 4 lines or 12 columns
// draw nothing).
func stepChart(steps []SeriesStep, from, to time.Time, unit string, width, height int) []string {
	if height < 4 || width < 12 || len(steps) == 0 || !to.After(from) {
		return nil
	}
	lo, hi := steps[0].Min, steps[0].Max
	for _, s := range steps {
		lo, hi = min(lo, s.Min), max(hi, s.Max)
	}
	if hi == lo {
		lo, hi = lo-1, hi+1
	}
	rows := height - 2
	labels := []string{formatNumber(hi), formatNumber((lo + hi) / 2), formatNumber(lo)}
	labelW := 0
	for _, l := range labels {
		labelW = max(labelW, len(l))
	}
	cols := width - labelW - 2 - ansi.StringWidth(unit) - 1
	if cols < 4 {
		return nil
	}
	grid := make([][]rune, rows)
	for r := range grid {
		grid[r] = []rune(strings.Repeat(" ", cols))
	}
	rowOf := func(v float64) int {
		r := int(math.Round((hi - v) / (hi - lo) * float64(rows-1)))
		return min(max(r, 0), rows-1)
	}
	span := to.Sub(from)
	type agg struct {
		lo, hi, sum float64
		n           int
	}
	colAgg := make([]agg, cols)
	for _, s := range steps {
		c := int(float64(s.Start.Sub(from)) / float64(span) * float64(cols))
		c = min(max(c, 0), cols-1)
		a := &colAgg[c]
		if a.n == 0 {
			a.lo, a.hi = s.Min, s.Max
		}
		a.lo, a.hi = min(a.lo, s.Min), max(a.hi, s.Max)
		a.sum += s.Avg
		a.n++
	}
	for c, a := range colAgg {
		if a.n == 0 {
			continue
		}
		top, bottom := rowOf(a.hi), rowOf(a.lo)
		for r := top; r <= bottom; r++ {
			grid[r][c] = '│'
		}
		grid[rowOf(a.sum/float64(a.n))][c] = '●'
	}
	out := make([]string, 0, height)
	for r := range rows {
		label, tick := "", "│"
		switch r {
		case 0:
			label, tick = labels[0], "┤"
		case (rows - 1) / 2:
			label, tick = labels[1], "┤"
		case rows - 1:
			label, tick = labels[2], "┤"
		}
		out = append(out, padLeft(label, labelW)+" "+tick+string(grid[r]))
	}
	out = append(out, strings.Repeat(" ", labelW)+" └"+strings.Repeat("─", cols))
	left, right := timeLabel(from, from, to), timeLabel(to, from, to)
	axis := strings.Repeat(" ", labelW+2) + left
	if gap := labelW + 2 + cols - len(axis) - len(right); gap > 0 {
		axis += strings.Repeat(" ", gap) + right
	}
	if unit != "" {
		out[0] += " " + unit
	}
	return append(out, axis)
}

// trackPoint is one location of a track.
type trackPoint struct{ lat, lng float64 }

// trackPlot draws locations on a lat/lng grid: "·" for each, "o" where
// the track starts and "●" where it ends; north is up. It returns height
// lines of at most width cells, nothing when too small.
func trackPlot(pts []trackPoint, width, height int) []string {
	if height < 4 || width < 24 || len(pts) == 0 {
		return nil
	}
	latLo, latHi, lngLo, lngHi := pts[0].lat, pts[0].lat, pts[0].lng, pts[0].lng
	for _, p := range pts {
		latLo, latHi = min(latLo, p.lat), max(latHi, p.lat)
		lngLo, lngHi = min(lngLo, p.lng), max(lngHi, p.lng)
	}
	if latHi == latLo {
		latLo, latHi = latLo-0.001, latHi+0.001
	}
	if lngHi == lngLo {
		lngLo, lngHi = lngLo-0.001, lngHi+0.001
	}
	labels := []string{formatCoord(latHi), formatCoord(latLo)}
	labelW := max(len(labels[0]), len(labels[1]))
	rows, cols := height-2, width-labelW-2-len(" lat")
	grid := make([][]rune, rows)
	for r := range grid {
		grid[r] = []rune(strings.Repeat(" ", cols))
	}
	at := func(p trackPoint) (int, int) {
		r := int(math.Round((latHi - p.lat) / (latHi - latLo) * float64(rows-1)))
		c := int(math.Round((p.lng - lngLo) / (lngHi - lngLo) * float64(cols-1)))
		return min(max(r, 0), rows-1), min(max(c, 0), cols-1)
	}
	for _, p := range pts {
		r, c := at(p)
		grid[r][c] = '·'
	}
	r, c := at(pts[0])
	grid[r][c] = 'o'
	r, c = at(pts[len(pts)-1])
	grid[r][c] = '●'
	out := make([]string, 0, height)
	for r := range rows {
		label, tick := "", "│"
		switch r {
		case 0:
			label, tick = labels[0], "┤"
		case rows - 1:
			label, tick = labels[1], "┤"
		}
		out = append(out, padLeft(label, labelW)+" "+tick+string(grid[r]))
	}
	out = append(out, strings.Repeat(" ", labelW)+" └"+strings.Repeat("─", cols))
	left, right := "lng "+formatCoord(lngLo), formatCoord(lngHi)
	axis := strings.Repeat(" ", labelW+2) + left
	if gap := labelW + 2 + cols - len(axis) - len(right); gap > 0 {
		axis += strings.Repeat(" ", gap) + right
	}
	out[0] += " lat"
	return append(out, axis)
}

// formatCoord shows a coordinate to about a metre.
func formatCoord(v float64) string { return strconv.FormatFloat(v, 'f', 5, 64) }
