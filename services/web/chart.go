package web

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Charts are drawn on the server as inline SVG: numbers only go into
// the drawing (paths, positions), text only through the template's
// escaping, no script and no style attribute; the stylesheet colours
// them by class, so they follow the light or dark scheme.

// chart geometry, in the SVG's own units (it scales to the page width).
const (
	chartW, chartH = 800, 300
	padL, padR     = 64, 16
	padT, padB     = 16, 40
)

// tick is one labelled mark on an axis.
type tick struct {
	Pos   float64
	Label string
}

// series is one time series of a chart: per bucket the aggregate Avg and
// the band Min–Max; a bucket without data is a gap.
type bucket struct {
	TS            int64 // bucket start
	Avg, Min, Max float64
}

// svgChart is what the history template draws.
type svgChart struct {
	W, H           int
	X0, X1, Y0, Y1 float64 // the plot area
	Band, Line     string  // path data
	Dots           []dot   // single buckets (no line to draw through)
	Whiskers       []whisker
	XTicks, YTicks []tick
	Unit           string
	Empty          bool
}

type dot struct{ X, Y float64 }

// whisker is the min–max bar of a single bucket.
type whisker struct{ X, Top, Bottom float64 }

// niceStep is a 1, 2 or 5 times a power of ten near span/n.
func niceStep(span float64, n int) float64 {
	if span <= 0 || math.IsNaN(span) || math.IsInf(span, 0) {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// decimalsFor is how many decimals labels in steps of step need.
func decimalsFor(step float64) int {
	if step <= 0 || step >= 1 {
		return 0
	}
	return int(math.Ceil(-math.Log10(step) - 1e-9))
}

// niceRange widens [lo, hi] to whole steps and returns the ticks.
func niceRange(lo, hi float64, n int) (float64, float64, []float64, int) {
	if hi == lo {
		d := math.Max(math.Abs(lo)*0.1, 1)
		lo, hi = lo-d, hi+d
	}
	step := niceStep(hi-lo, n)
	lo = math.Floor(lo/step) * step
	hi = math.Ceil(hi/step) * step
	var ts []float64
	for v := lo; v <= hi+step/2; v += step {
		ts = append(ts, math.Round(v/step)*step)
	}
	return lo, hi, ts, decimalsFor(step)
}

// timeSteps are the spacings of time ticks, in seconds.
var timeSteps = []int64{60, 300, 600, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400, 14 * 86400}

// timeTicks are about six ticks over [from, to], at round UTC times.
func timeTicks(from, to int64) []int64 {
	span := to - from
	step := timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if span/s <= 6 {
			step = s
			break
		}
	}
	var out []int64
	for t := (from + step - 1) / step * step; t <= to; t += step {
		out = append(out, t)
	}
	return out
}

// timeLabel formats a tick for the range's length.
func timeLabel(ts, span int64) string {
	t := time.Unix(ts, 0).UTC()
	switch {
	case span <= 86400:
		return t.Format("15:04")
	case span <= 3*86400:
		return t.Format("Jan 2 15:04")
	}
	return t.Format("Jan 2")
}

// timeChart draws buckets over [from, to]; step is the bucket width
// (gaps longer than a bucket break the line). onOff labels 0 and 1 as
// off and on (a switch's state).
func timeChart(bs []bucket, from, to, step int64, unit string, onOff bool) svgChart {
	c := svgChart{W: chartW, H: chartH, X0: padL, X1: chartW - padR, Y0: padT, Y1: chartH - padB, Unit: unit}
	if to <= from {
		to = from + 1
	}
	x := func(ts int64) float64 {
		ts = min(max(ts, from), to) // a bucket's middle may lie past the range's end
		return c.X0 + float64(ts-from)/float64(to-from)*(c.X1-c.X0)
	}
	for _, t := range timeTicks(from, to) {
		c.XTicks = append(c.XTicks, tick{Pos: round1(x(t)), Label: timeLabel(t, to-from)})
	}
	if len(bs) == 0 {
		c.Empty = true
		return c
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, b := range bs {
		lo, hi = math.Min(lo, b.Min), math.Max(hi, b.Max)
	}
	var ticks []float64
	dec := 0
	if onOff {
		lo, hi, ticks = 0, 1, []float64{0, 1}
	} else {
		lo, hi, ticks, dec = niceRange(lo, hi, 5)
	}
	y := func(v float64) float64 {
		return c.Y1 - (v-lo)/(hi-lo)*(c.Y1-c.Y0)
	}
	for _, v := range ticks {
		l := fixedNum(v, dec)
		if onOff {
			l = map[float64]string{0: "off", 1: "on"}[v]
		}
		c.YTicks = append(c.YTicks, tick{Pos: round1(y(v)), Label: l})
	}
	// Runs of buckets without gaps become one line and one band each.
	var band, line strings.Builder
	run := []bucket{}
	flush := func() {
		switch len(run) {
		case 0:
			return
		case 1:
			b := run[0]
			c.Dots = append(c.Dots, dot{round1(x(b.TS + step/2)), round1(y(b.Avg))})
			if b.Max > b.Min {
				c.Whiskers = append(c.Whiskers, whisker{round1(x(b.TS + step/2)), round1(y(b.Max)), round1(y(b.Min))})
			}
		default:
			for i, b := range run {
				cmd := " L"
				if i == 0 {
					cmd = "M"
					if line.Len() > 0 {
						cmd = " M"
					}
				}
				line.WriteString(cmd + pt(x(b.TS+step/2), y(b.Avg)))
			}
			for i, b := range run {
				cmd := " L"
				if i == 0 {
					cmd = "M"
					if band.Len() > 0 {
						cmd = " M"
					}
				}
				band.WriteString(cmd + pt(x(b.TS+step/2), y(b.Max)))
			}
			for i := len(run) - 1; i >= 0; i-- {
				band.WriteString(" L" + pt(x(run[i].TS+step/2), y(run[i].Min)))
			}
			band.WriteString(" Z")
		}
		run = run[:0]
	}
	// A line joins buckets up to two steps or a twentieth of the range
	// apart; a longer silence is a gap.
	gap := max(2*step, (to-from)/20)
	for i, b := range bs {
		if i > 0 && b.TS-bs[i-1].TS > gap {
			flush()
		}
		run = append(run, b)
	}
	flush()
	c.Band, c.Line = band.String(), line.String()
	return c
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func pt(x, y float64) string {
	return strconv.FormatFloat(round1(x), 'f', -1, 64) + " " + strconv.FormatFloat(round1(y), 'f', -1, 64)
}

// geoPoint is a position on a coordinate plot; Href and Label name it.
type geoPoint struct {
	Lat, Lng float64
	Label    string
	Href     string
	Alarm    bool
	X, Y     float64 // filled in by geoPlot
}

// geoChart is a plain lat/lon plot: no tiles, no internet.
type geoChart struct {
	W, H           int
	X0, X1, Y0, Y1 float64
	XTicks, YTicks []tick
	Points         []geoPoint
	Track          string // path through the points in order
	Empty          bool
}

// geoPlot places points on an equirectangular plot whose longitudes are
// shortened by the cosine of the middle latitude, so distances look
// right near the points; track draws a line through them in order.
func geoPlot(ps []geoPoint, track bool) geoChart {
	g := geoChart{W: chartW, H: 480, X0: padL, X1: chartW - padR, Y0: padT, Y1: 480 - padB}
	if len(ps) == 0 {
		g.Empty = true
		return g
	}
	minLat, maxLat, minLng, maxLng := 90.0, -90.0, 180.0, -180.0
	for _, p := range ps {
		minLat, maxLat = math.Min(minLat, p.Lat), math.Max(maxLat, p.Lat)
		minLng, maxLng = math.Min(minLng, p.Lng), math.Max(maxLng, p.Lng)
	}
	k := math.Max(math.Cos((minLat+maxLat)/2*math.Pi/180), 0.05)
	// At least ~100 m around a single point; 10 % margins (and room for
	// the labels right of the points).
	dLat, dLng := math.Max(maxLat-minLat, 0.001), math.Max(maxLng-minLng, 0.001/k)
	minLat, maxLat = minLat-dLat*0.1, maxLat+dLat*0.1
	minLng, maxLng = minLng-dLng*0.1, maxLng+dLng*0.2
	// Same scale on both axes (in km): widen the narrower one.
	w, h := g.X1-g.X0, g.Y1-g.Y0
	spanX, spanY := (maxLng-minLng)*k, maxLat-minLat
	if spanX/w > spanY/h {
		grow := (spanX/w*h - spanY) / 2
		minLat, maxLat = minLat-grow, maxLat+grow
	} else {
		grow := (spanY/h*w/k - (maxLng - minLng)) / 2
		minLng, maxLng = minLng-grow, maxLng+grow
	}
	x := func(lng float64) float64 { return g.X0 + (lng-minLng)/(maxLng-minLng)*w }
	y := func(lat float64) float64 { return g.Y1 - (lat-minLat)/(maxLat-minLat)*h }
	axis := func(lo, hi float64, n int, pos func(float64) float64, suffix [2]string) []tick {
		step := niceStep(hi-lo, n)
		dec := decimalsFor(step)
		var out []tick
		for v := math.Ceil(lo/step) * step; v <= hi; v += step {
			l := fixedNum(math.Abs(v), dec) + "°"
			if v < 0 {
				l += suffix[1]
			} else if v > 0 {
				l += suffix[0]
			}
			out = append(out, tick{Pos: round1(pos(v)), Label: l})
		}
		return out
	}
	g.XTicks = axis(minLng, maxLng, 5, x, [2]string{"E", "W"})
	g.YTicks = axis(minLat, maxLat, 5, y, [2]string{"N", "S"})
	var tr strings.Builder
	for i, p := range ps {
		p.X, p.Y = round1(x(p.Lng)), round1(y(p.Lat))
		g.Points = append(g.Points, p)
		if track {
			if i == 0 {
				tr.WriteString("M" + pt(p.X, p.Y))
			} else {
				tr.WriteString(" L" + pt(p.X, p.Y))
			}
		}
	}
	g.Track = tr.String()
	return g
}
