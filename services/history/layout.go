package history

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/piot-appliance/piot/services/store"
)

const (
	hourSecs = 3600
	daySecs  = 86400
	// partitionPrefix starts every partition's collection name.
	partitionPrefix = "history_"
)

// floorDiv divides rounding towards minus infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// partitionName is the collection of a unix day.
func partitionName(day int64) string {
	return partitionPrefix + time.Unix(day*daySecs, 0).UTC().Format("2006_01_02")
}

func parsePartitionName(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, partitionPrefix)
	if !ok {
		return 0, false
	}
	t, err := time.Parse("2006_01_02", rest)
	if err != nil {
		return 0, false
	}
	return floorDiv(t.Unix(), daySecs), true
}

// rawID is the `_id` of the raw bucket of an hour (unix hour number).
func rawID(thing store.ID, kind string, hour int64) string {
	return thing.Hex() + ":" + kind + ":" + strconv.FormatInt(hour, 10)
}

// chunkPoints caps the points of one raw bucket document. FerretDB
// updates a document by reading, decoding and rewriting all of it, so a
// $push onto an hour bucket costs as much as the points already in it; a
// busy series (hundreds of points an hour) spills into further chunks of
// the hour, and a write costs at most one chunk. With 1 000 things
// reporting every second, BenchmarkAppend/1000things_x27points_every1s
// stores 50 000 points/s at 256, 44 000 at 128 and 512, and 26 000 at
// 2 048; a one-reading-a-minute series still fits an hour in one chunk.
const chunkPoints = 256

// A raw bucket's array "p" holds one element per write, the points of
// that write joined by pointSep: FerretDB keeps a type schema entry per
// array element and decodes them one by one, which cost more than the
// points themselves when every point was an element. Points never
// contain pointSep (values are numbers or validated strings).
const pointSep = "\n"

// eachPoint calls fn for every point of a raw array element.
func eachPoint(e string, fn func(string)) {
	for e != "" {
		p, rest, _ := strings.Cut(e, pointSep)
		fn(p)
		e = rest
	}
}

// countPoints counts the points of raw array elements.
func countPoints(es []string) int {
	n := 0
	for _, e := range es {
		if e != "" {
			n += strings.Count(e, pointSep) + 1
		}
	}
	return n
}

// chunkID is the `_id` of chunk c of an hour's raw bucket; chunk 0 is the
// bucket itself and counts the chunks in its field "chunks".
func chunkID(thing store.ID, kind string, hour int64, c int) string {
	id := rawID(thing, kind, hour)
	if c == 0 {
		return id
	}
	return id + ":" + strconv.Itoa(c)
}

// rollupID is the `_id` of the rollup of a day (unix day number).
func rollupID(thing store.ID, kind string, day int64) string {
	return thing.Hex() + ":" + kind + ":d" + strconv.FormatInt(day, 10)
}

// hourField is the rollup field of an hour of the day (0–23).
func hourField(h int64) string { return fmt.Sprintf("h%02d", h) }

// encodePoint is a raw array entry: seconds into the hour and the value.
func encodePoint(ts, hourStart int64, value string) string {
	return strconv.FormatInt(ts-hourStart, 10) + " " + value
}

func decodePoint(e string, hourStart int64) (int64, string, bool) {
	off, v, ok := strings.Cut(e, " ")
	if !ok {
		return 0, "", false
	}
	o, err := strconv.ParseInt(off, 10, 64)
	if err != nil {
		return 0, "", false
	}
	return hourStart + o, v, true
}

// numeric parses a finite number.
func numeric(v string) (float64, bool) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

func formatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// stats summarize points: the rollup of an hour, or a query bucket.
type stats struct {
	N  int64   // points
	C  int64   // numeric points
	S  float64 // sum of numeric values
	Mn float64 // min of numeric values (valid if C > 0)
	Mx float64 // max of numeric values
	Ft int64   // time of the first point
	Fv string
	Lt int64 // time of the last point
	Lv string
}

// encode renders stats as one string, "n c sum min max ft lt "fv" "lv"":
// FerretDB stores a sub-document with a type schema per field, and
// decoding thirty days of those dominated rollup queries.
func (st *stats) encode() string {
	b := make([]byte, 0, 64+len(st.Fv)+len(st.Lv))
	b = strconv.AppendInt(b, st.N, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, st.C, 10)
	for _, f := range []float64{st.S, st.Mn, st.Mx} {
		b = append(b, ' ')
		b = strconv.AppendFloat(b, f, 'g', -1, 64)
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, st.Ft, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, st.Lt, 10)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, st.Fv)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, st.Lv)
	return string(b)
}

var errBadStats = fmt.Errorf("history: malformed rollup entry")

func decodeStats(s string) (stats, error) {
	var st stats
	var err error
	next := func() string {
		f, rest, _ := strings.Cut(s, " ")
		s = rest
		return f
	}
	ints := []*int64{&st.N, &st.C}
	for _, p := range ints {
		if *p, err = strconv.ParseInt(next(), 10, 64); err != nil {
			return st, errBadStats
		}
	}
	for _, p := range []*float64{&st.S, &st.Mn, &st.Mx} {
		if *p, err = strconv.ParseFloat(next(), 64); err != nil {
			return st, errBadStats
		}
	}
	for _, p := range []*int64{&st.Ft, &st.Lt} {
		if *p, err = strconv.ParseInt(next(), 10, 64); err != nil {
			return st, errBadStats
		}
	}
	for _, p := range []*string{&st.Fv, &st.Lv} {
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return st, errBadStats
		}
		if *p, err = strconv.Unquote(q); err != nil {
			return st, errBadStats
		}
		s = strings.TrimPrefix(s[len(q):], " ")
	}
	return st, nil
}

// add counts one point. Ties keep the earliest arrival as first and the
// latest as last.
func (st *stats) add(ts int64, v string) {
	if st.N == 0 || ts < st.Ft {
		st.Ft, st.Fv = ts, v
	}
	if st.N == 0 || ts >= st.Lt {
		st.Lt, st.Lv = ts, v
	}
	st.N++
	if f, ok := numeric(v); ok {
		if st.C == 0 || f < st.Mn {
			st.Mn = f
		}
		if st.C == 0 || f > st.Mx {
			st.Mx = f
		}
		st.C++
		st.S += f
	}
}

// addPoints adds the points of a stored payload (pointSep-joined) of the
// hour starting at hourStart; malformed points are skipped.
func (st *stats) addPoints(p string, hourStart int64) {
	eachPoint(p, func(e string) {
		if ts, v, ok := decodePoint(e, hourStart); ok {
			st.add(ts, v)
		}
	})
}

// own copies the first and last values out of the payloads they were
// cut from. Summaries built from stored segments or chunks outlive them in
// the bucket cache, and a value pinning its payload kept every busy
// series' last segments in memory: 169 MB of a heap profile at the end of
// an hour under the sustained benchmark.
func (st *stats) own() {
	st.Fv, st.Lv = strings.Clone(st.Fv), strings.Clone(st.Lv)
}

// merge adds another summary.
func (st *stats) merge(o stats) {
	if o.N == 0 {
		return
	}
	if st.N == 0 || o.Ft < st.Ft {
		st.Ft, st.Fv = o.Ft, o.Fv
	}
	if st.N == 0 || o.Lt >= st.Lt {
		st.Lt, st.Lv = o.Lt, o.Lv
	}
	st.N += o.N
	if o.C > 0 {
		if st.C == 0 || o.Mn < st.Mn {
			st.Mn = o.Mn
		}
		if st.C == 0 || o.Mx > st.Mx {
			st.Mx = o.Mx
		}
		st.C += o.C
		st.S += o.S
	}
}

// value applies fn; false if the bucket has nothing fn can use.
func (st *stats) value(fn Fn) (string, bool) {
	switch fn {
	case FnLast:
		return st.Lv, st.N > 0
	case FnAvg:
		return formatNumber(st.S / float64(st.C)), st.C > 0
	case FnMin:
		return formatNumber(st.Mn), st.C > 0
	case FnMax:
		return formatNumber(st.Mx), st.C > 0
	}
	return "", false
}

func (s *Store) sortedDaysLocked() []int64 {
	days := make([]int64, 0, len(s.parts))
	for d := range s.parts {
		days = append(days, d)
	}
	sort.Slice(days, func(i, j int) bool { return days[i] < days[j] })
	return days
}
