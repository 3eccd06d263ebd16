package tui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// Colours are the 16 ANSI ones, so they follow the user's terminal theme;
// Bubble Tea strips them under NO_COLOR. Nothing relies on colour alone:
// the selected row has a ">" marker, the active tab brackets, errors a
// leading "error:".
var (
	styleTitle    = lipgloss.NewStyle().Bold(true)
	styleTabOn    = lipgloss.NewStyle().Bold(true).Reverse(true)
	styleTabOff   = lipgloss.NewStyle()
	styleDim      = lipgloss.NewStyle().Faint(true)
	styleSelected = lipgloss.NewStyle().Reverse(true)
	styleHeader   = lipgloss.NewStyle().Bold(true).Underline(true)
	styleErr      = lipgloss.NewStyle().Foreground(lipgloss.Color("1")).Bold(true)
	styleOK       = lipgloss.NewStyle().Foreground(lipgloss.Color("2"))
	styleWarn     = lipgloss.NewStyle().Foreground(lipgloss.Color("3"))
	styleInfo     = lipgloss.NewStyle().Foreground(lipgloss.Color("6"))
	styleKey      = lipgloss.NewStyle().Bold(true)
)

// cut shortens plain text to width cells, marking the cut with "…".
func cut(s string, width int) string {
	if width <= 0 {
		return ""
	}
	return ansi.Truncate(s, width, "…")
}

// pad cuts or right-pads plain text to exactly width cells.
func pad(s string, width int) string {
	s = cut(s, width)
	if w := ansi.StringWidth(s); w < width {
		s += strings.Repeat(" ", width-w)
	}
	return s
}

// padLeft cuts or left-pads plain text to exactly width cells.
func padLeft(s string, width int) string {
	s = cut(s, width)
	if w := ansi.StringWidth(s); w < width {
		s = strings.Repeat(" ", width-w) + s
	}
	return s
}

// fitLines makes a block exactly height lines of at most width cells, so
// the layout below it never moves.
func fitLines(s string, width, height int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > height {
		lines = lines[:height]
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > width {
			lines[i] = ansi.Truncate(l, width, "…")
		}
	}
	for len(lines) < height {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}

// printable replaces control characters so device-supplied text (topics,
// payloads, names) cannot move the cursor or change the terminal's state.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\uFFFD' {
			return '·'
		}
		return r
	}, s)
}

// ago formats the time since a Unix timestamp the way the original
// manager did: "12s ago", "3m ago", "5h ago", "2d ago".
func ago(now time.Time, unix int64) string {
	if unix <= 0 {
		return "never"
	}
	d := now.Sub(time.Unix(unix, 0))
	switch {
	case d < 0:
		return "now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}

// duration formats an uptime compactly.
func duration(d time.Duration) string {
	d = d.Round(time.Second)
	days := int(d.Hours()) / 24
	h := int(d.Hours()) % 24
	m := int(d.Minutes()) % 60
	s := int(d.Seconds()) % 60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh %dm", days, h, m)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm %ds", m, s)
	default:
		return fmt.Sprintf("%ds", s)
	}
}

// bytesHuman formats a byte count in binary units.
func bytesHuman(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

var sparkBlocks = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the last width values as block characters scaled between
// their minimum and maximum.
func sparkline(values []float64, width int) string {
	if width <= 0 {
		return ""
	}
	if len(values) > width {
		values = values[len(values)-width:]
	}
	if len(values) == 0 {
		return strings.Repeat(" ", width)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	var b strings.Builder
	for _, v := range values {
		i := 0
		if hi > lo {
			i = int((v - lo) / (hi - lo) * float64(len(sparkBlocks)-1))
		} else if hi > 0 {
			i = len(sparkBlocks) / 2
		}
		b.WriteRune(sparkBlocks[i])
	}
	return b.String() + strings.Repeat(" ", width-len(values))
}

// onOff renders a flag as text that reads without colour.
func onOff(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
