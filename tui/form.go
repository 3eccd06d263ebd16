package tui

import (
	"strconv"
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/piot-appliance/piot/services/core"
)

type fieldKind int

const (
	fieldText fieldKind = iota
	fieldSecret
	fieldInt
	fieldFloat
	fieldBool
	fieldChoice
)

// field is one labelled input of a form. errKeys are the words core uses
// for this field in its messages ("availability_topic", "thing name"), so
// a refused save puts the message under the field it is about.
type field struct {
	name    string // what the caller reads it back by
	label   string
	kind    fieldKind
	input   textinput.Model
	choices []string // fieldChoice: values; fieldBool uses yes/no
	labels  []string // fieldChoice: what is shown for each value
	choice  int
	errKeys []string
	err     string
	initial string
}

// form is a vertical list of fields with inline errors. Enter moves on and
// submits from the last field; ctrl+s submits from anywhere; esc cancels.
type form struct {
	title  string
	fields []*field
	focus  int
	err    string // an error that belongs to no field
	note   string
	busy   bool
}

func newForm(title string) *form { return &form{title: title} }

func (f *form) text(name, label, value string, errKeys ...string) *form {
	return f.add(&field{name: name, label: label, kind: fieldText, errKeys: errKeys}, value)
}

func (f *form) secret(name, label string, errKeys ...string) *form {
	return f.add(&field{name: name, label: label, kind: fieldSecret, errKeys: errKeys}, "")
}

func (f *form) integer(name, label string, value int64, errKeys ...string) *form {
	return f.add(&field{name: name, label: label, kind: fieldInt, errKeys: errKeys}, strconv.FormatInt(value, 10))
}

func (f *form) float(name, label string, value float64, errKeys ...string) *form {
	return f.add(&field{name: name, label: label, kind: fieldFloat, errKeys: errKeys}, strconv.FormatFloat(value, 'f', -1, 64))
}

func (f *form) boolean(name, label string, value bool, errKeys ...string) *form {
	fl := &field{name: name, label: label, kind: fieldBool, choices: []string{"no", "yes"}, errKeys: errKeys}
	if value {
		fl.choice = 1
	}
	return f.add(fl, "")
}

func (f *form) pick(name, label string, values, labels []string, current string, errKeys ...string) *form {
	fl := &field{name: name, label: label, kind: fieldChoice, choices: values, labels: labels, errKeys: errKeys}
	for i, v := range values {
		if v == current {
			fl.choice = i
		}
	}
	return f.add(fl, "")
}

func (f *form) add(fl *field, value string) *form {
	// Stored text may hold control characters (descriptions come from the
	// API); shown raw they would drive the terminal. An untouched field is
	// not saved, so cleaning it here changes nothing stored.
	value = printable(value)
	fl.input = newInput("", "")
	fl.input.SetValue(value)
	fl.initial = value
	if fl.kind == fieldSecret {
		fl.input.EchoMode = textinput.EchoPassword
		fl.input.EchoCharacter = '*'
	}
	if fl.kind == fieldChoice || fl.kind == fieldBool {
		fl.initial = fl.choices[fl.choice]
	}
	f.fields = append(f.fields, fl)
	if len(f.fields) == 1 {
		f.focusField(0)
	}
	return f
}

func (f *form) focusField(i int) tea.Cmd {
	for j, fl := range f.fields {
		if j != i {
			fl.input.Blur()
		}
	}
	f.focus = i
	fl := f.fields[i]
	if fl.kind == fieldChoice || fl.kind == fieldBool {
		return nil
	}
	return fl.input.Focus()
}

// value returns a field's current text ("yes"/"no" for flags, the value of
// a choice).
func (f *form) value(name string) string {
	for _, fl := range f.fields {
		if fl.name == name {
			if fl.kind == fieldChoice || fl.kind == fieldBool {
				return fl.choices[fl.choice]
			}
			return fl.input.Value()
		}
	}
	return ""
}

// changed reports whether the user changed a field.
func (f *form) changed(name string) bool {
	for _, fl := range f.fields {
		if fl.name == name {
			return f.value(name) != fl.initial
		}
	}
	return false
}

// str returns a pointer to a changed text value, nil when unchanged, so
// updates only touch what the user edited.
func (f *form) str(name string) *string {
	if !f.changed(name) {
		return nil
	}
	v := f.value(name)
	return &v
}

func (f *form) flag(name string) *bool {
	if !f.changed(name) {
		return nil
	}
	v := f.value(name) == "yes"
	return &v
}

// parse checks the number fields locally; it marks bad fields and reports
// whether all are fine.
func (f *form) parse() bool {
	ok := true
	f.err = ""
	for _, fl := range f.fields {
		fl.err = ""
		v := strings.TrimSpace(fl.input.Value())
		switch fl.kind {
		case fieldInt:
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				fl.err = "must be a whole number"
				ok = false
			}
		case fieldFloat:
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				fl.err = "must be a number"
				ok = false
			}
		}
	}
	return ok
}

func (f *form) int64(name string) *int64 {
	if !f.changed(name) {
		return nil
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(f.value(name)), 10, 64)
	return &n
}

func (f *form) float64(name string) *float64 {
	if !f.changed(name) {
		return nil
	}
	n, _ := strconv.ParseFloat(strings.TrimSpace(f.value(name)), 64)
	return &n
}

// fail shows a core error under the field it names, or above the form.
func (f *form) fail(err error) {
	f.busy = false
	msg := core.Message(err)
	for _, fl := range f.fields {
		fl.err = ""
	}
	f.err = ""
	for i, fl := range f.fields {
		for _, k := range fl.errKeys {
			if k != "" && strings.Contains(strings.ToLower(msg), strings.ToLower(k)) {
				fl.err = msg
				f.focusField(i)
				return
			}
		}
	}
	f.err = msg
}

// formResult is what a form's update tells its owner.
type formResult int

const (
	formEditing formResult = iota
	formSubmit
	formCancel
)

func (f *form) update(msg tea.Msg) (formResult, tea.Cmd) {
	if f.busy {
		if k, ok := msg.(tea.KeyPressMsg); ok && k.String() == "esc" {
			return formCancel, nil
		}
		return formEditing, nil
	}
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		if len(f.fields) == 0 {
			return formEditing, nil
		}
		var cmd tea.Cmd
		f.fields[f.focus].input, cmd = f.fields[f.focus].input.Update(msg)
		return formEditing, cmd
	}
	if len(f.fields) == 0 {
		switch k.String() {
		case "enter", "ctrl+s":
			return f.submit()
		case "esc":
			return formCancel, nil
		}
		return formEditing, nil
	}
	fl := f.fields[f.focus]
	switch k.String() {
	case "esc":
		return formCancel, nil
	case "ctrl+s":
		return f.submit()
	case "enter":
		if f.focus == len(f.fields)-1 {
			return f.submit()
		}
		return formEditing, f.focusField(f.focus + 1)
	case "tab", "down":
		return formEditing, f.focusField((f.focus + 1) % len(f.fields))
	case "shift+tab", "up":
		return formEditing, f.focusField((f.focus + len(f.fields) - 1) % len(f.fields))
	}
	if fl.kind == fieldChoice || fl.kind == fieldBool {
		switch k.String() {
		case "space", "right", "l":
			fl.choice = (fl.choice + 1) % len(fl.choices)
		case "left", "h":
			fl.choice = (fl.choice + len(fl.choices) - 1) % len(fl.choices)
		case "y":
			if fl.kind == fieldBool {
				fl.choice = 1
			}
		case "n":
			if fl.kind == fieldBool {
				fl.choice = 0
			}
		}
		return formEditing, nil
	}
	var cmd tea.Cmd
	fl.input, cmd = fl.input.Update(msg)
	fl.err = ""
	return formEditing, cmd
}

func (f *form) submit() (formResult, tea.Cmd) {
	if !f.parse() {
		for i, fl := range f.fields {
			if fl.err != "" {
				return formEditing, f.focusField(i)
			}
		}
	}
	f.busy = true
	return formSubmit, nil
}

func (f *form) view(width, height int) string {
	var b strings.Builder
	b.WriteString(styleTitle.Render(cut(printable(f.title), width)) + "\n")
	if f.note != "" {
		b.WriteString(styleDim.Render(cut(f.note, width)) + "\n")
	}
	labelW := 0
	for _, fl := range f.fields {
		labelW = max(labelW, len(fl.label))
	}
	labelW = min(labelW, max(width/3, 10))
	inputW := max(width-labelW-4, 8)
	for i, fl := range f.fields {
		marker := "  "
		if i == f.focus {
			marker = "> "
		}
		var val string
		switch fl.kind {
		case fieldChoice, fieldBool:
			shown := fl.choices[fl.choice]
			if fl.labels != nil {
				shown = fl.labels[fl.choice]
			}
			val = "< " + printable(shown) + " >"
			if i == f.focus {
				val = styleSelected.Render(cut(val, inputW))
			}
		default:
			fl.input.SetWidth(inputW - 1)
			val = fl.input.View()
		}
		b.WriteString(marker + pad(fl.label, labelW) + "  " + val + "\n")
		if fl.err != "" {
			b.WriteString(styleErr.Render(cut("    error: "+printable(fl.err), width)) + "\n")
		}
	}
	if f.err != "" {
		b.WriteString(styleErr.Render(cut("error: "+printable(f.err), width)) + "\n")
	}
	help := "enter next/save • tab move • ctrl+s save • esc cancel"
	if f.busy {
		help = "saving…"
	}
	b.WriteString(styleDim.Render(cut(help, width)))
	return fitLines(b.String(), width, height)
}

// confirm is a yes/no question guarding a destructive action.
type confirm struct {
	question string
	action   func() tea.Cmd
}

func (c *confirm) view(width int) string {
	return styleWarn.Render(cut(printable(c.question)+"  [y/N]", width))
}
