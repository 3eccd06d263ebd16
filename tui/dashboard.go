package tui

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/piot-appliance/piot/services/core"
)

const sparkSamples = 120

// dashTwoCols is the width from which the dashboard shows its two columns
// side by side.
const dashTwoCols = 70

// dashboard is the first screen: what the appliance is and how it is doing.
type dashboard struct {
	env *env
	s   dashSample
	ok  bool

	msgs, ingest []float64
}

// dashSample is one reading of everything the dashboard shows, taken off
// the UI goroutine.
type dashSample struct {
	at            time.Time
	stats         core.Stats
	things        int
	metrics       *MetricsSnapshot
	services      []ServiceStatus
	diskUsed      uint64
	diskTotal     uint64
	memUsed       uint64
	memTotal      uint64
	goMem         uint64
	alarms        int
	alarmsFromSvc bool
	activeOrg     string
}

type dashSampleMsg dashSample

func newDashboard(e *env) *dashboard { return &dashboard{env: e} }

func (d *dashboard) title() string       { return "Dashboard" }
func (d *dashboard) adminOnly() bool     { return false }
func (d *dashboard) capturing() bool     { return false }
func (d *dashboard) keys() []key.Binding { return []key.Binding{keyRefresh} }
func (d *dashboard) refresh() tea.Cmd    { return d.sample() }

func (d *dashboard) sample() tea.Cmd {
	e := d.env
	return e.run(func(a core.Actor) (tea.Msg, error) {
		s := dashSample{at: e.now()}
		if st, err := e.core.StatsFor(a); err == nil {
			s.stats = st
		}
		q := core.ThingQuery{All: a.IsAdministrator()}
		if page, err := e.core.Things(a, q); err == nil {
			s.things = page.TotalCount
			for _, t := range page.Items {
				if t.AlarmActive {
					s.alarms++
				}
			}
		}
		if org := e.core.ActiveOrg(a); !org.IsZero() {
			s.activeOrg, _ = e.core.OrgNameOf(org)
		}
		if e.deps.Alarms != nil {
			if list, err := e.deps.Alarms.Active(e.ctx, a); err == nil {
				s.alarms, s.alarmsFromSvc = len(list), true
			}
		}
		if e.deps.Metrics != nil {
			ms := e.deps.Metrics.Snapshot()
			s.metrics = &ms
		}
		if e.deps.Health != nil {
			s.services = e.deps.Health.Services()
		}
		s.diskUsed, s.diskTotal, _ = diskUsage(e.deps.DataDir)
		s.memUsed, s.memTotal, _ = memoryUsage()
		var rt runtime.MemStats
		runtime.ReadMemStats(&rt)
		s.goMem = rt.Sys
		return dashSampleMsg(s), nil
	})
}

func (d *dashboard) update(msg tea.Msg) tea.Cmd {
	if s, ok := msg.(dashSampleMsg); ok {
		d.s, d.ok = dashSample(s), true
		if s.metrics != nil {
			d.msgs = appendRing(d.msgs, s.metrics.MessagesPerSecond)
			d.ingest = appendRing(d.ingest, s.metrics.IngestPerSecond)
		}
	}
	return nil
}

func appendRing(r []float64, v float64) []float64 {
	r = append(r, v)
	if len(r) > sparkSamples {
		r = r[len(r)-sparkSamples:]
	}
	return r
}

func (d *dashboard) view(width, height int) string {
	if !d.ok {
		return styleDim.Render("loading…")
	}
	e, s := d.env, d.s
	colW := width
	twoCols := width >= dashTwoCols
	if twoCols {
		colW = (width - 3) / 2
	}
	kv := func(k, v string) string { return cut(" "+pad(k, 8)+" "+v, colW) }

	var left []string
	left = append(left, styleTitle.Render(" Appliance"))
	left = append(left, kv("version", orDash(e.deps.Version)))
	if !e.deps.Started.IsZero() {
		left = append(left, kv("uptime", duration(s.at.Sub(e.deps.Started))))
	}
	who := e.actor.Email
	if e.actor.IsAdministrator() {
		who += " (admin)"
	}
	left = append(left, kv("user", who))
	if e.actor.IsAdministrator() {
		left = append(left, kv("objects", fmt.Sprintf("%d things, %d orgs, %d users", s.stats.Things, s.stats.Orgs, s.stats.Users)))
	} else {
		left = append(left, kv("org", orDash(s.activeOrg)))
		left = append(left, kv("things", fmt.Sprint(s.things)))
	}
	alarms := fmt.Sprintf("%d active", s.alarms)
	if s.alarms > 0 {
		alarms = styleErr.Render(alarms)
	}
	left = append(left, kv("alarms", alarms))
	left = append(left, "")
	left = append(left, styleTitle.Render(" Services"))
	if e.deps.Health == nil {
		left = append(left, styleDim.Render(" not available"))
	}
	for _, sv := range s.services {
		state := styleOK.Render("ok  ")
		if !sv.OK {
			state = styleErr.Render("DOWN")
		}
		left = append(left, cut(" "+state+" "+pad(printable(sv.Name), 10)+" "+printable(sv.Detail), colW))
	}

	var right []string
	right = append(right, styleTitle.Render(" Traffic"))
	if s.metrics == nil {
		right = append(right, styleDim.Render(" not available"))
	} else {
		m := s.metrics
		sw := max(colW-24, 4)
		right = append(right, kv("clients", fmt.Sprint(m.ConnectedClients)))
		right = append(right, cut(fmt.Sprintf(" %-11s %7.1f  %s", "messages/s", m.MessagesPerSecond, sparkline(d.msgs, sw)), colW))
		right = append(right, cut(fmt.Sprintf(" %-11s %7.1f  %s", "ingest/s", m.IngestPerSecond, sparkline(d.ingest, sw)), colW))
		right = append(right, kv("journal", fmt.Sprintf("%d pending", m.JournalDepth)))
		right = append(right, kv("spool", fmt.Sprintf("%d pending", m.SpoolDepth)))
	}
	right = append(right, "")
	right = append(right, styleTitle.Render(" Resources"))
	if s.diskTotal > 0 {
		right = append(right, kv("disk", usage(s.diskUsed, s.diskTotal)))
	}
	if s.memTotal > 0 {
		right = append(right, kv("memory", usage(s.memUsed, s.memTotal)))
	}
	right = append(right, kv("piot", bytesHuman(s.goMem)+" (Go runtime)"))

	if !twoCols {
		if len(left)+1+len(right) <= height {
			return strings.Join(append(append(left, ""), right...), "\n")
		}
		// The right column does not fit below the left one: say where it
		// went instead of cutting it off unannounced.
		left = left[:min(len(left), max(height-1, 0))]
		hint := fmt.Sprintf("traffic and resources: widen the terminal to %d columns", dashTwoCols)
		return strings.Join(append(left, styleDim.Render(cut(" "+hint, width))), "\n")
	}
	l := lipgloss.NewStyle().Width(colW).Render(strings.Join(left, "\n"))
	r := lipgloss.NewStyle().Width(colW).Render(strings.Join(right, "\n"))
	sep := strings.TrimRight(strings.Repeat(" │ \n", max(len(left), len(right))), "\n")
	return lipgloss.JoinHorizontal(lipgloss.Top, l, styleDim.Render(sep), r)
}

func usage(used, total uint64) string {
	return fmt.Sprintf("%s / %s (%d%%)", bytesHuman(used), bytesHuman(total), used*100/total)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
