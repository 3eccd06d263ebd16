package tui

import (
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/piot-appliance/piot/services/core"
)

// doneMsg reports the end of a form save or a confirmed action to the
// screen whose tag it carries.
type doneMsg struct {
	tag  string
	info string
	err  error
	// reveal, when set, is shown once in a box (a new MQTT password).
	reveal *reveal
}

// reveal is a secret shown exactly once, with a way to copy it.
type reveal struct {
	title  string
	lines  []string
	secret string
}

// overlay is the modal part of a screen: a form, a yes/no question, or a
// secret shown once. While one is open it has the keyboard.
type overlay struct {
	tag     string
	env     *env
	form    *form
	save    func(a core.Actor, f *form) (string, error)
	saveRev func(a core.Actor, f *form) (*reveal, error)
	confirm *confirm
	shown   *reveal
	copied  bool
}

func (o *overlay) active() bool { return o.form != nil || o.confirm != nil || o.shown != nil }

// open shows a form; save runs off the UI goroutine when it is submitted
// and returns the status line text.
func (o *overlay) open(f *form, save func(a core.Actor, f *form) (string, error)) tea.Cmd {
	o.form, o.save, o.saveRev, o.confirm, o.shown = f, save, nil, nil, nil
	if len(f.fields) > 0 {
		return f.focusField(0)
	}
	return nil
}

// openReveal shows a form whose save produces a secret to show once.
func (o *overlay) openReveal(f *form, save func(a core.Actor, f *form) (*reveal, error)) tea.Cmd {
	cmd := o.open(f, nil)
	o.saveRev = save
	return cmd
}

// ask shows a yes/no question; do runs on "y".
func (o *overlay) ask(question string, do func(a core.Actor) (string, error)) {
	o.form, o.shown = nil, nil
	o.confirm = &confirm{question: question, action: func() tea.Cmd { return o.exec(do, nil) }}
}

// exec runs an action and reports it as a doneMsg for this screen.
func (o *overlay) exec(do func(a core.Actor) (string, error), rev func(a core.Actor) (*reveal, error)) tea.Cmd {
	e, tag := o.env, o.tag
	return func() tea.Msg {
		a, err := e.who()
		if err != nil {
			return endMsg{reason: err.Error()}
		}
		if rev != nil {
			r, err := rev(a)
			return doneMsg{tag: tag, err: err, reveal: r}
		}
		info, err := do(a)
		return doneMsg{tag: tag, info: info, err: err}
	}
}

// update handles keys while the overlay is open and the results of its
// actions. handled is false for messages that are not the overlay's.
func (o *overlay) update(msg tea.Msg) (handled bool, cmd tea.Cmd) {
	if d, ok := msg.(doneMsg); ok && d.tag == o.tag {
		if d.err != nil {
			if o.form != nil {
				o.form.fail(d.err)
				return true, nil
			}
			return true, func() tea.Msg { return o.env.errMsg(d.err, o.env.actor.IsAdministrator()) }
		}
		o.form, o.confirm = nil, nil
		if d.reveal != nil {
			o.shown, o.copied = d.reveal, false
		}
		if d.info != "" {
			return false, func() tea.Msg { return statusMsg{text: d.info} }
		}
		return false, nil
	}
	switch {
	case o.shown != nil:
		k, ok := msg.(tea.KeyPressMsg)
		if !ok {
			return false, nil
		}
		if k.String() == "c" && o.shown.secret != "" {
			o.copied = true
			return true, tea.SetClipboard(o.shown.secret)
		}
		o.shown = nil
		return true, nil
	case o.confirm != nil:
		k, ok := msg.(tea.KeyPressMsg)
		if !ok {
			return false, nil
		}
		c := o.confirm
		o.confirm = nil
		if k.String() == "y" || k.String() == "Y" {
			return true, c.action()
		}
		return true, func() tea.Msg { return statusMsg{text: "cancelled"} }
	case o.form != nil:
		switch msg.(type) {
		case tea.KeyPressMsg, tea.PasteMsg:
		default:
			// Data refreshes belong to the screen under the form.
			return false, nil
		}
		res, cmd := o.form.update(msg)
		switch res {
		case formCancel:
			o.form = nil
		case formSubmit:
			f, save, saveRev := o.form, o.save, o.saveRev
			if saveRev != nil {
				return true, o.exec(nil, func(a core.Actor) (*reveal, error) { return saveRev(a, f) })
			}
			return true, o.exec(func(a core.Actor) (string, error) { return save(a, f) }, nil)
		}
		return true, cmd
	}
	return false, nil
}

func (o *overlay) view(width, height int) string {
	switch {
	case o.shown != nil:
		var b strings.Builder
		b.WriteString(styleTitle.Render(printable(o.shown.title)) + "\n\n")
		for _, l := range o.shown.lines {
			b.WriteString(cut("  "+printable(l), width) + "\n")
		}
		b.WriteString("\n")
		hint := "It is shown only now: copy it before closing (select it with the mouse"
		if o.shown.secret != "" {
			hint += ", or press c to copy through the terminal (OSC 52)"
		}
		hint += ")."
		b.WriteString(styleWarn.Render(wrapText(hint, width)) + "\n")
		if o.copied {
			b.WriteString(styleOK.Render("sent to the terminal's clipboard") + "\n")
		}
		b.WriteString(styleDim.Render("any other key closes"))
		return fitLines(b.String(), width, height)
	case o.form != nil:
		return o.form.view(width, height)
	}
	return ""
}

// wrapText breaks plain text into lines of at most width cells.
func wrapText(s string, width int) string {
	if width < 10 {
		return s
	}
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len([]rune(line))+1+len([]rune(w)) > width {
			lines = append(lines, line)
			line = w
			continue
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}
