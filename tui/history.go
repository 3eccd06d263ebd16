package tui

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/piot-appliance/piot/services/core"
)

// historyRanges are the ranges ←/→ step through; after them comes the
// custom one typed with c.
var historyRanges = []struct {
	label string
	span  time.Duration
}{{"1 h", time.Hour}, {"24 h", 24 * time.Hour}, {"7 d", 7 * 24 * time.Hour}, {"30 d", 30 * 24 * time.Hour}}

// historySteps is how many steps a range is cut into: more than an 80
// column chart has columns, so no column is left empty between two steps.
const historySteps = 120

// historyReload is how old a relative range's answer may get before a
// refresh asks again; the raw readings of 30 days are not read every tick.
const historyReload = 30 * time.Second

// History views of one series.
const (
	viewChart = iota
	viewSteps
	viewReadings
	viewCount
)

// historyScreen picks a thing, then charts one of its series over a range,
// with its steps and raw readings as tables.
type historyScreen struct {
	env    *env
	things *list
	items  map[string]core.Thing
	loaded bool

	open string // the thing's id; "" shows the picker
	// pending is a thing to open once the list has it (H on Things before
	// this screen had loaded).
	pending string
	kinds   []string
	kind    int
	rng     int // index into historyRanges; len(historyRanges) is custom
	from    time.Time
	to      time.Time
	mode    int
	table   *list
	// tableFor names what the table holds (mode and series), so a reload
	// of the same keeps the table and its selected row.
	tableFor string
	series   Series
	gen      int
	err      string
	done     bool // the answer for gen arrived
	at       time.Time

	input   textinput.Model
	editing bool
}

type historyThingsMsg struct{ things []core.Thing }

// openHistoryMsg asks for the History screen of a thing (H on Things).
type openHistoryMsg struct{ thing string }

type seriesMsg struct {
	gen    int
	series Series
	err    string
}

var (
	keyHistRange  = key.NewBinding(key.WithKeys("right", "]"), key.WithHelp("←/→", "range"))
	keyHistRangeB = key.NewBinding(key.WithKeys("left", "["))
	keyHistCustom = key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "custom range"))
	keyHistSeries = key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "series"))
	keyHistView   = key.NewBinding(key.WithKeys("v"), key.WithHelp("v", "chart/steps/readings"))
	keyHistOpen   = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open"))
	keyHistBack   = key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back"))
)

func newHistory(e *env) *historyScreen {
	return &historyScreen{
		env: e,
		things: newList([]column{
			{title: "Name", width: 16, flex: 2},
			{title: "Type", width: 7},
			{title: "Series", width: 16, flex: 1, drop: 1},
		}, "no things you may see"),
		rng:   1,
		input: newInput("range: ", "3h, 2d or 2026-04-30 06:00..2026-05-01 06:00"),
	}
}

func (s *historyScreen) title() string   { return "History" }
func (s *historyScreen) adminOnly() bool { return false }
func (s *historyScreen) capturing() bool {
	return s.editing || (s.open == "" && s.things.capturing()) || (s.table != nil && s.table.capturing())
}

func (s *historyScreen) keys() []key.Binding {
	if s.open == "" {
		return append([]key.Binding{keyHistOpen}, s.things.keys()...)
	}
	return []key.Binding{keyHistRange, keyHistCustom, keyHistSeries, keyHistView, keyHistBack, keyUp, keyDown, keyPgUp}
}

// seriesOf lists the series a thing records: its own, and battery when
// it tracks one.
func seriesOf(t core.Thing) []string {
	own := "location"
	switch t.Type {
	case "sensor", "switch":
		own = t.Type
	}
	kinds := []string{own}
	if t.BatteryLevelTracking {
		kinds = append(kinds, "battery")
	}
	return kinds
}

func (s *historyScreen) refresh() tea.Cmd {
	e := s.env
	cmds := []tea.Cmd{e.run(func(a core.Actor) (tea.Msg, error) {
		page, err := e.core.Things(a, core.ThingQuery{All: a.IsAdministrator(), SortBy: "name", SortSet: true})
		if err != nil {
			return nil, err
		}
		return historyThingsMsg{things: page.Items}, nil
	})}
	if s.open != "" && s.rng < len(historyRanges) && e.now().Sub(s.at) > historyReload {
		cmds = append(cmds, s.reload())
	}
	return tea.Batch(cmds...)
}

// load asks for the open thing's chosen series over the chosen range,
// showing "loading…" until it arrives.
func (s *historyScreen) load() tea.Cmd {
	s.done, s.err = false, ""
	return s.reload()
}

// reload asks again, showing the current answer until the new one is in:
// a relative range moves with the clock without blanking the screen.
func (s *historyScreen) reload() tea.Cmd {
	e := s.env
	t, ok := s.items[s.open]
	if !ok {
		return nil
	}
	if s.rng < len(historyRanges) {
		s.to = e.now()
		s.from = s.to.Add(-historyRanges[s.rng].span)
	}
	s.gen++
	s.at = e.now()
	gen, q := s.gen, SeriesQuery{Kind: s.kinds[s.kind], From: s.from, To: s.to, Steps: historySteps}
	if e.deps.History == nil {
		return func() tea.Msg { return seriesMsg{gen: gen, err: "history not available"} }
	}
	return func() tea.Msg {
		a, err := e.who()
		if err != nil {
			return endMsg{reason: err.Error()}
		}
		sr, err := e.deps.History.Series(e.ctx, a, t.ID, q)
		if err != nil {
			return seriesMsg{gen: gen, err: core.Message(err)}
		}
		return seriesMsg{gen: gen, series: sr}
	}
}

func (s *historyScreen) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case historyThingsMsg:
		s.loaded = true
		s.items = make(map[string]core.Thing, len(msg.things))
		rows := make([]row, 0, len(msg.things))
		for _, t := range msg.things {
			s.items[t.ID.Hex()] = t
			rows = append(rows, row{key: t.ID.Hex(), cells: []string{printable(t.Name), t.Type, strings.Join(seriesOf(t), ", ")}})
		}
		s.things.setRows(rows)
		if s.pending != "" {
			id := s.pending
			s.pending = ""
			return s.show(id)
		}
		if _, ok := s.items[s.open]; s.open != "" && !ok {
			s.open = ""
			return func() tea.Msg { return statusMsg{text: "the thing is gone (deleted or moved out of your org)"} }
		}
	case seriesMsg:
		if msg.gen != s.gen {
			return nil
		}
		s.done, s.series, s.err = true, msg.series, msg.err
		s.fillTable()
	case tea.PasteMsg:
		if s.editing {
			var cmd tea.Cmd
			s.input, cmd = s.input.Update(msg)
			return cmd
		}
	case tea.KeyPressMsg:
		return s.key(msg)
	}
	return nil
}

func (s *historyScreen) key(k tea.KeyPressMsg) tea.Cmd {
	if s.editing {
		switch k.String() {
		case "enter":
			from, to, err := parseRange(s.input.Value(), s.env.now())
			if err != nil {
				return func() tea.Msg { return statusMsg{text: err.Error(), err: true} }
			}
			s.editing = false
			s.input.Blur()
			s.rng, s.from, s.to = len(historyRanges), from, to
			return s.load()
		case "esc":
			s.editing = false
			s.input.Blur()
			return nil
		}
		var cmd tea.Cmd
		s.input, cmd = s.input.Update(k)
		return cmd
	}
	if s.open == "" {
		if !s.things.capturing() && key.Matches(k, keyHistOpen) {
			if r, ok := s.things.selected(); ok {
				return s.show(r.key)
			}
			return nil
		}
		_, cmd := s.things.update(k, 10)
		return cmd
	}
	if s.table != nil && s.table.capturing() {
		_, cmd := s.table.update(k, 10)
		return cmd
	}
	switch {
	case key.Matches(k, keyHistBack):
		s.open = ""
	case key.Matches(k, keyHistRange):
		s.rng = (s.rng + 1) % len(historyRanges)
		return s.load()
	case key.Matches(k, keyHistRangeB):
		s.rng = (s.rng + len(historyRanges) - 1) % len(historyRanges)
		return s.load()
	case key.Matches(k, keyHistCustom):
		s.editing = true
		s.input.SetValue("")
		return s.input.Focus()
	case key.Matches(k, keyHistSeries):
		s.kind = (s.kind + 1) % len(s.kinds)
		return s.load()
	case key.Matches(k, keyHistView):
		s.mode = (s.mode + 1) % viewCount
		if s.mode == viewSteps && s.kinds[s.kind] == "location" {
			s.mode = viewReadings
		}
		s.fillTable()
	case s.table != nil && s.mode != viewChart:
		_, cmd := s.table.update(k, 10)
		return cmd
	}
	return nil
}

// showWhenListed opens a thing now if the list has it, else when the
// list (being refreshed by the switch to this screen) arrives.
func (s *historyScreen) showWhenListed(id string) tea.Cmd {
	if _, ok := s.items[id]; ok {
		return s.show(id)
	}
	s.pending = id
	return nil
}

// show opens a thing's history at its own series.
func (s *historyScreen) show(id string) tea.Cmd {
	t, ok := s.items[id]
	if !ok {
		return nil
	}
	s.open, s.kinds, s.kind, s.mode, s.series = id, seriesOf(t), 0, viewChart, Series{}
	return s.load()
}

// parseRange reads a custom range: "3h", "90m", "2d" end now; "A..B"
// with dates or date-times (local time) is from A to B.
func parseRange(v string, now time.Time) (time.Time, time.Time, error) {
	v = strings.TrimSpace(v)
	if a, b, ok := strings.Cut(v, ".."); ok {
		from, err1 := parseWhen(strings.TrimSpace(a), now.Location())
		to, err2 := parseWhen(strings.TrimSpace(b), now.Location())
		if err1 != nil || err2 != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("range: write dates as 2026-04-30 or 2026-04-30 06:00")
		}
		if !to.After(from) {
			return time.Time{}, time.Time{}, fmt.Errorf("range: the end must be after the start")
		}
		return from, to, nil
	}
	var d time.Duration
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 {
			return time.Time{}, time.Time{}, fmt.Errorf("range: %q is not a number of days", v)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			return time.Time{}, time.Time{}, fmt.Errorf("range: write 3h, 90m, 2d or FROM..TO")
		}
	}
	return now.Add(-d), now, nil
}

func parseWhen(s string, loc *time.Location) (time.Time, error) {
	var err error
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02"} {
		var t time.Time
		if t, err = time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}

// unit is what the open series is measured in.
func (s *historyScreen) unit() string {
	switch s.kinds[s.kind] {
	case "battery":
		return "%"
	case "switch":
		return "on=1"
	case "sensor":
		return printable(s.items[s.open].Sensor.Unit)
	}
	return ""
}

// location parses a location reading.
func location(v string) (trackPoint, bool) {
	var p struct {
		Lat *float64 `json:"lat"`
		Lng *float64 `json:"lng"`
	}
	if json.Unmarshal([]byte(v), &p) != nil || p.Lat == nil || p.Lng == nil {
		return trackPoint{}, false
	}
	return trackPoint{*p.Lat, *p.Lng}, true
}

// fillTable puts the steps or the readings, newest first, in the table.
func (s *historyScreen) fillTable() {
	if s.mode == viewChart {
		return
	}
	stamp := func(t time.Time) string { return t.In(s.env.now().Location()).Format("2006-01-02 15:04:05") }
	// Rows are keyed by time (and rank among readings of the same second),
	// which stays when the range moves on and old rows drop off.
	seen := map[int64]int{}
	keyOf := func(t time.Time) string {
		seen[t.Unix()]++
		return fmt.Sprintf("%d/%d", t.Unix(), seen[t.Unix()])
	}
	var rows []row
	what := fmt.Sprintf("%s/%d/%s", s.open, s.mode, s.kinds[s.kind])
	fresh := s.table == nil || s.tableFor != what
	s.tableFor = what
	table := func(cols []column) {
		if fresh {
			s.table = newList(cols, "no readings in this range")
		}
	}
	switch {
	case s.mode == viewSteps:
		table([]column{{title: "Step from", width: 19}, {title: "Min", width: 9, right: true}, {title: "Avg", width: 9, right: true}, {title: "Max", width: 9, right: true}})
		for i := len(s.series.Steps) - 1; i >= 0; i-- {
			st := s.series.Steps[i]
			rows = append(rows, row{key: keyOf(st.Start), cells: []string{stamp(st.Start), formatNumber(st.Min), formatNumber(st.Avg), formatNumber(st.Max)}})
		}
	case s.kinds[s.kind] == "location":
		table([]column{{title: "Time", width: 19}, {title: "Latitude", width: 10, right: true}, {title: "Longitude", width: 10, right: true}})
		for i := len(s.series.Readings) - 1; i >= 0; i-- {
			r := s.series.Readings[i]
			cells := []string{stamp(r.Time), printable(r.Value), ""}
			if p, ok := location(r.Value); ok {
				cells = []string{stamp(r.Time), formatCoord(p.lat), formatCoord(p.lng)}
			}
			rows = append(rows, row{key: keyOf(r.Time), cells: cells})
		}
	default:
		table([]column{{title: "Time", width: 19}, {title: "Value", width: 12, flex: 1}})
		for i := len(s.series.Readings) - 1; i >= 0; i-- {
			r := s.series.Readings[i]
			v := printable(r.Value)
			if f, err := strconv.ParseFloat(r.Value, 64); err == nil {
				v = formatNumber(f)
			}
			rows = append(rows, row{key: keyOf(r.Time), cells: []string{stamp(r.Time), v}})
		}
	}
	s.table.setRows(rows)
}

func (s *historyScreen) view(width, height int) string {
	if !s.loaded {
		return styleDim.Render("loading…")
	}
	if s.open == "" {
		return styleTitle.Render("History — pick a thing") + "\n" + s.things.view(width, max(height-1, 0))
	}
	t := s.items[s.open]
	var ranges []string
	for i, r := range historyRanges {
		ranges = append(ranges, bracket(r.label, i == s.rng))
	}
	ranges = append(ranges, bracket("custom", s.rng == len(historyRanges)))
	head := fmt.Sprintf("%s • %s", printable(t.Name), strings.Join(ranges, " "))
	if len(s.kinds) > 1 {
		var ks []string
		for i, k := range s.kinds {
			ks = append(ks, bracket(k, i == s.kind))
		}
		head += " • " + strings.Join(ks, " ")
	}
	lines := []string{cut(head, width)}
	if s.editing {
		s.input.SetWidth(max(width-10, 1))
		lines = append(lines, cut(s.input.View(), width))
	}
	lines = append(lines, styleDim.Render(cut(s.from.Format("2006-01-02 15:04")+" – "+s.to.Format("2006-01-02 15:04"), width)))
	switch {
	case !s.done:
		return strings.Join(append(lines, styleDim.Render("loading…")), "\n")
	case s.err != "":
		return strings.Join(append(lines, styleErr.Render(cut(s.err, width))), "\n")
	}
	lines = append(lines, cut(s.summary(), width))
	room := max(height-len(lines), 0)
	switch {
	case s.mode != viewChart && s.table != nil:
		lines = append(lines, s.table.view(width, room))
	case s.kinds[s.kind] == "location":
		var pts []trackPoint
		for _, r := range s.series.Readings {
			if p, ok := location(r.Value); ok {
				pts = append(pts, p)
			}
		}
		if plot := trackPlot(pts, width, room); plot != nil {
			lines = append(lines, plot...)
		} else if len(pts) == 0 {
			lines = append(lines, styleDim.Render("no locations in this range"))
		}
	default:
		if chart := stepChart(s.series.Steps, s.from, s.to, s.unit(), width, room); chart != nil {
			lines = append(lines, chart...)
		} else if len(s.series.Steps) == 0 {
			lines = append(lines, styleDim.Render("no readings in this range"))
		}
	}
	return strings.Join(lines, "\n")
}

// summary sums the range up: the extremes of the steps, which cover the
// whole range, and the mean of the raw readings (of the steps' averages
// when the store returned only the oldest readings).
func (s *historyScreen) summary() string {
	n := len(s.series.Readings)
	more := ""
	if s.series.Truncated {
		more = " oldest"
	}
	if s.kinds[s.kind] == "location" {
		return fmt.Sprintf("%d%s locations • o start ● end", n, more)
	}
	steps := s.series.Steps
	if len(steps) == 0 {
		return fmt.Sprintf("%d%s readings", n, more)
	}
	lo, hi := steps[0].Min, steps[0].Max
	var stepSum float64
	for _, st := range steps {
		lo, hi, stepSum = min(lo, st.Min), max(hi, st.Max), stepSum+st.Avg
	}
	avg := stepSum / float64(len(steps))
	if !s.series.Truncated {
		var sum float64
		count := 0
		for _, r := range s.series.Readings {
			if v, err := strconv.ParseFloat(r.Value, 64); err == nil {
				sum, count = sum+v, count+1
			}
		}
		if count > 0 {
			avg = sum / float64(count)
		}
	}
	return fmt.Sprintf("min %s • avg %s • max %s %s • %d%s readings • step %s",
		formatNumber(lo), formatNumber(avg), formatNumber(hi), s.unit(), n, more, shortDuration(s.series.Step))
}

func bracket(s string, on bool) string {
	if on {
		return "[" + s + "]"
	}
	return " " + s + " "
}

// shortDuration writes a step as 15m, 2h or 1d.
func shortDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "raw"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
