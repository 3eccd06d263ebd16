package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/piot-appliance/piot/services/core"
)

// The Users screen's view of <data-dir>/authorized_keys: keys no user
// owns, each logging in as the first admin, listed so they can be
// removed like the users' own keys.

// authKeysMsg is the file as last read; err is why it could not be.
type authKeysMsg struct {
	file  AuthorizedKeyFile
	as    string // who its keys log in as
	err   error
	admin bool
}

var (
	keyAuthKeys   = key.NewBinding(key.WithKeys("A"), key.WithHelp("A", "keys of authorized_keys"))
	keyAuthKeyDel = key.NewBinding(key.WithKeys("d", "x"), key.WithHelp("d", "remove key"))
)

func newAuthKeysList() *list {
	return newList([]column{
		{title: "Fingerprint", width: 20, flex: 2},
		{title: "Type", width: 11, drop: 2},
		{title: "Comment", width: 8, flex: 1, drop: 1},
		{title: "Line", width: 4, right: true, numeric: true, drop: 3},
	}, "authorized_keys holds no key")
}

// loadAuthKeys reads the file if the console has it; core refuses it to
// everybody but admins.
func (s *usersScreen) loadAuthKeys(a core.Actor) tea.Msg {
	e := s.env
	if e.deps.AuthorizedKeys == nil {
		return nil
	}
	msg := authKeysMsg{}
	msg.file, msg.err = e.deps.AuthorizedKeys.List(e.ctx, a)
	if first, ok := e.core.FirstAdmin(); ok {
		msg.as = first.Email
	}
	msg.admin = a.IsAdministrator()
	return msg
}

func (s *usersScreen) showAuthKeys(msg authKeysMsg) {
	s.authKeys, s.authKeysAs = msg.file, msg.as
	s.authKeysErr = ""
	if msg.err != nil {
		s.authKeysErr = s.env.errMsg(msg.err, msg.admin).(statusMsg).text
	}
	rows := make([]row, 0, len(msg.file.Keys))
	for _, k := range msg.file.Keys {
		fp, comment := k.Fingerprint, k.Comment
		if fp == "" {
			fp = "(line not a key)"
		}
		if k.Skipped != "" {
			comment = "skipped: " + k.Skipped
		}
		rows = append(rows, row{key: k.Fingerprint, cells: []string{fp, orDash(k.Type), comment, fmt.Sprint(k.Line)}})
	}
	s.authKeysL.setRows(rows)
}

func (s *usersScreen) authKeysKey(k tea.KeyPressMsg) tea.Cmd {
	if used, cmd := s.authKeysL.update(k, 10); used {
		return cmd
	}
	e := s.env
	switch {
	case key.Matches(k, keyListBack):
		s.authKeysOpen = false
		return nil
	case key.Matches(k, keyAuthKeyDel):
		if err := core.AuthorizeAdmin(e.actor, core.ActAuthorizedKeys); err != nil {
			return e.refuse(err)
		}
		r, ok := s.authKeysL.selected()
		if !ok || r.key == "" {
			return nil
		}
		fp, what := r.key, "the key of line "+r.cells[3]
		if c := r.cells[2]; c != "" {
			what += " (" + c + ")"
		}
		// The fingerprint is on the selected row; the question fits 80
		// columns.
		question := "Remove " + what + " from authorized_keys?"
		s.ov.ask(question, func(a core.Actor) (string, error) {
			n, err := e.deps.AuthorizedKeys.Remove(e.ctx, a, fp)
			if err != nil {
				return "", err
			}
			if n > 1 {
				return fmt.Sprintf("removed %s from authorized_keys (%d lines)", fp, n), nil
			}
			return "removed " + fp + " from authorized_keys", nil
		})
	}
	return nil
}

func (s *usersScreen) authKeysView(width, height int) string {
	var b strings.Builder
	b.WriteString(styleTitle.Render(cut("Keys of "+orDash(s.authKeys.Path), width)) + "\n")
	as := "the first admin"
	if s.authKeysAs != "" {
		as += " (" + s.authKeysAs + ")"
	}
	b.WriteString(cut("  from authorized_keys, logs in as "+printable(as), width) + "\n")
	lines := 2
	for _, warn := range []string{s.authKeys.Ignored, s.authKeysErr} {
		if warn != "" {
			b.WriteString(styleWarn.Render(cut("  "+printable(warn), width)) + "\n")
			lines++
		}
	}
	return b.String() + s.authKeysL.view(width, height-lines)
}

// authKeysHint is the users list's line about the file.
func (s *usersScreen) authKeysHint() string {
	if s.env.deps.AuthorizedKeys == nil {
		return ""
	}
	return fmt.Sprintf(" · %d in authorized_keys (A)", len(s.authKeys.Keys))
}
