package tui

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// column describes one column of a list. Columns with flex share the width
// left over after the fixed ones; when the terminal is too narrow the
// columns with the highest drop value go first.
type column struct {
	title string
	width int // minimum (and, without flex, exact) width
	flex  int
	right bool
	drop  int // 0 is never dropped
	// numeric sorts by the number the cell starts with.
	numeric bool
}

// row is one line of a list. key identifies it across refreshes so the
// cursor stays on the same item; sort holds optional sort keys per column.
type row struct {
	key    string
	cells  []string
	styles []lipgloss.Style // optional, per cell
	sort   []string         // optional, per cell
}

// list is a filterable, sortable, scrolling table. It renders plain text
// cells (callers pass printable text) and marks the selected row with ">"
// so it reads without colour.
type list struct {
	cols     []column
	all      []row
	visible  []int
	cursor   int
	offset   int
	sortable bool
	sortCol  int // -1: the caller's order
	sortDesc bool
	empty    string
	passive  bool // shown only: no selected row

	filtering bool
	filter    textinput.Model
}

func newList(cols []column, empty string) *list {
	return &list{cols: cols, sortCol: -1, empty: empty, filter: newInput("filter: ", "")}
}

var (
	keyUp     = key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up"))
	keyDown   = key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down"))
	keyPgUp   = key.NewBinding(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup", "page up"))
	keyPgDown = key.NewBinding(key.WithKeys("pgdown", "ctrl+f"), key.WithHelp("pgdn", "page down"))
	keyHome   = key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g", "top"))
	keyEnd    = key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G", "bottom"))
	keyFilter = key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter"))
	keySort   = key.NewBinding(key.WithKeys("s"), key.WithHelp("s/S", "sort column/order"))
	keySortR  = key.NewBinding(key.WithKeys("S"))
)

func (l *list) keys() []key.Binding {
	ks := []key.Binding{keyUp, keyDown, keyPgUp, keyPgDown, keyHome, keyEnd, keyFilter}
	if l.sortable {
		ks = append(ks, keySort)
	}
	return ks
}

// capturing reports whether the filter input has the keyboard.
func (l *list) capturing() bool { return l.filtering }

// setRows replaces the content, keeping the cursor on the same key.
func (l *list) setRows(rows []row) {
	sel := l.selectedKey()
	l.all = rows
	l.recompute()
	l.follow(sel)
}

func (l *list) selectedKey() string {
	r, _ := l.selected()
	return r.key
}

// follow puts the cursor on the row of key sel if it is visible, so a
// sort, a filter or a refresh never silently selects another item.
func (l *list) follow(sel string) bool {
	found := false
	if sel != "" {
		for i, idx := range l.visible {
			if l.all[idx].key == sel {
				l.cursor, found = i, true
				break
			}
		}
	}
	l.clamp()
	return found
}

// selectKey moves the cursor to the row of key, clearing a filter that
// hides it; it reports whether the list has the row.
func (l *list) selectKey(key string) bool {
	if l.follow(key) {
		return true
	}
	if l.filter.Value() == "" {
		return false
	}
	l.filter.SetValue("")
	l.recompute()
	return l.follow(key)
}

func (l *list) selected() (row, bool) {
	if l.cursor < 0 || l.cursor >= len(l.visible) {
		return row{}, false
	}
	return l.all[l.visible[l.cursor]], true
}

func (l *list) len() int { return len(l.visible) }

// apply recomputes the visible rows from the filter and the sort,
// keeping the selected row selected while it stays visible.
func (l *list) apply() {
	sel := l.selectedKey()
	l.recompute()
	l.follow(sel)
}

func (l *list) recompute() {
	needle := strings.ToLower(strings.TrimSpace(l.filter.Value()))
	l.visible = l.visible[:0]
	for i, r := range l.all {
		if needle == "" || strings.Contains(strings.ToLower(strings.Join(r.cells, "\x00")), needle) {
			l.visible = append(l.visible, i)
		}
	}
	if l.sortCol >= 0 && l.sortCol < len(l.cols) {
		c, numeric := l.sortCol, l.cols[l.sortCol].numeric
		keyOf := func(r row) string {
			if c < len(r.sort) && r.sort[c] != "" {
				return r.sort[c]
			}
			if c < len(r.cells) {
				return strings.ToLower(r.cells[c])
			}
			return ""
		}
		slices.SortStableFunc(l.visible, func(a, b int) int {
			ka, kb := keyOf(l.all[a]), keyOf(l.all[b])
			var o int
			if numeric {
				o = cmp.Compare(leadingNumber(ka), leadingNumber(kb))
			} else {
				o = strings.Compare(ka, kb)
			}
			if l.sortDesc {
				o = -o
			}
			return o
		})
	}
	l.clamp()
}

func leadingNumber(s string) float64 {
	end := 0
	for end < len(s) && (s[end] == '-' || s[end] == '.' || s[end] >= '0' && s[end] <= '9') {
		end++
	}
	f, err := strconv.ParseFloat(s[:end], 64)
	if err != nil {
		return -1e300
	}
	return f
}

func (l *list) clamp() {
	if l.cursor >= len(l.visible) {
		l.cursor = len(l.visible) - 1
	}
	if l.cursor < 0 {
		l.cursor = 0
	}
}

// update handles navigation, filtering and sorting keys. It reports whether
// it used the message.
func (l *list) update(msg tea.Msg, pageSize int) (bool, tea.Cmd) {
	k, ok := msg.(tea.KeyPressMsg)
	if l.filtering {
		if !ok {
			return false, nil
		}
		switch k.String() {
		case "enter":
			l.filtering = false
			l.filter.Blur()
			return true, nil
		case "esc":
			l.filtering = false
			l.filter.Blur()
			l.filter.SetValue("")
			l.apply()
			return true, nil
		case "up", "down":
			// Let the user move through the narrowed list while typing.
		default:
			var cmd tea.Cmd
			l.filter, cmd = l.filter.Update(msg)
			l.apply()
			return true, cmd
		}
	}
	if !ok {
		return false, nil
	}
	if pageSize < 1 {
		pageSize = 1
	}
	switch d, scroll := scrollBy(k, pageSize, len(l.visible)); {
	case scroll:
		l.cursor += d
	case key.Matches(k, keyFilter):
		l.filtering = true
		return true, l.filter.Focus()
	case k.String() == "esc" && l.filter.Value() != "":
		l.filter.SetValue("")
		l.apply()
	case l.sortable && key.Matches(k, keySort):
		l.sortCol++
		if l.sortCol >= len(l.cols) {
			l.sortCol = -1
		}
		l.sortDesc = false
		l.apply()
	case l.sortable && key.Matches(k, keySortR):
		if l.sortCol < 0 {
			l.sortCol = 0
		}
		l.sortDesc = !l.sortDesc
		l.apply()
	default:
		return false, nil
	}
	l.clamp()
	return true, nil
}

// scrollBy is how far a navigation key moves a cursor over n rows shown
// page rows at a time (home and end: all the way; the caller clamps);
// scroll is false for any other key. Every scrolling screen shares it.
func scrollBy(k tea.KeyPressMsg, page, n int) (d int, scroll bool) {
	switch {
	case key.Matches(k, keyUp):
		return -1, true
	case key.Matches(k, keyDown):
		return 1, true
	case key.Matches(k, keyPgUp):
		return -page, true
	case key.Matches(k, keyPgDown):
		return page, true
	case key.Matches(k, keyHome):
		return -n, true
	case key.Matches(k, keyEnd):
		return n, true
	}
	return 0, false
}

// widths lays the columns out in width cells; a zero width hides a column.
func (l *list) widths(width int) []int {
	ws := make([]int, len(l.cols))
	shown := make([]bool, len(l.cols))
	for i := range l.cols {
		shown[i] = true
	}
	for {
		used, flex, n := 2, 0, 0 // 2: the cursor marker
		for i, c := range l.cols {
			if shown[i] {
				used += c.width
				flex += c.flex
				n++
			}
		}
		used += n - 1 // one space between columns
		if used <= width || n <= 1 {
			free := max(width-used, 0)
			for i, c := range l.cols {
				if !shown[i] {
					continue
				}
				ws[i] = c.width
				if flex > 0 && c.flex > 0 {
					ws[i] += free * c.flex / flex
				}
			}
			return ws
		}
		// Drop the most droppable column still shown.
		worst := -1
		for i, c := range l.cols {
			if shown[i] && c.drop > 0 && (worst < 0 || c.drop > l.cols[worst].drop) {
				worst = i
			}
		}
		if worst < 0 {
			// Nothing more to drop: shrink the flexible columns.
			for i := range ws {
				if shown[i] {
					ws[i] = l.cols[i].width
				}
			}
			return ws
		}
		shown[worst] = false
	}
}

// view renders the list into width×height cells: an optional filter line,
// the header, and the rows around the cursor.
func (l *list) view(width, height int) string {
	var b strings.Builder
	lines := 0
	if l.filtering || l.filter.Value() != "" {
		if l.filtering {
			b.WriteString(l.filter.View())
		} else {
			b.WriteString(styleDim.Render(cut("filter: "+l.filter.Value()+"  (/ to change, esc to clear)", width)))
		}
		b.WriteString("\n")
		lines++
	}
	ws := l.widths(width)
	var hdr []string
	for i, c := range l.cols {
		if ws[i] == 0 {
			continue
		}
		t := c.title
		if l.sortable && i == l.sortCol {
			if l.sortDesc {
				t += "↓"
			} else {
				t += "↑"
			}
		}
		if c.right {
			hdr = append(hdr, padLeft(t, ws[i]))
		} else {
			hdr = append(hdr, pad(t, ws[i]))
		}
	}
	b.WriteString("  " + styleHeader.Render(strings.Join(hdr, " ")) + "\n")
	lines++
	rowsH := max(height-lines, 1)
	if len(l.visible) == 0 {
		msg := l.empty
		if l.filter.Value() != "" {
			msg = "nothing matches the filter"
		}
		b.WriteString(styleDim.Render(cut("  "+msg, width)))
		return b.String()
	}
	if l.cursor < l.offset {
		l.offset = l.cursor
	}
	if l.cursor >= l.offset+rowsH {
		l.offset = l.cursor - rowsH + 1
	}
	l.offset = max(min(l.offset, len(l.visible)-rowsH), 0)
	for i := l.offset; i < len(l.visible) && i < l.offset+rowsH; i++ {
		r := l.all[l.visible[i]]
		var cells []string
		for c := range l.cols {
			if ws[c] == 0 {
				continue
			}
			v := ""
			if c < len(r.cells) {
				v = printable(r.cells[c])
			}
			if l.cols[c].right {
				v = padLeft(v, ws[c])
			} else {
				v = pad(v, ws[c])
			}
			if (i != l.cursor || l.passive) && c < len(r.styles) {
				v = r.styles[c].Render(v)
			}
			cells = append(cells, v)
		}
		line := strings.Join(cells, " ")
		if i == l.cursor && !l.passive {
			b.WriteString("> " + styleSelected.Render(line))
		} else {
			b.WriteString("  " + line)
		}
		if i < l.offset+rowsH-1 && i < len(l.visible)-1 {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// newInput makes a text input with the console's defaults: no blinking
// (fewer redraws over slow links) and a bounded length.
func newInput(prompt, placeholder string) textinput.Model {
	in := textinput.New()
	in.Prompt = prompt
	in.Placeholder = placeholder
	in.CharLimit = 4096
	st := in.Styles()
	st.Cursor.Blink = false
	in.SetStyles(st)
	return in
}
