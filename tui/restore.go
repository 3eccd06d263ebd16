package tui

import (
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/piot-appliance/piot/services/core"
)

// A scheduled restore replaces everything at the next start, so while one
// waits every screen says so under the tab bar, with how to apply it and
// how to call it off.

var (
	keyCancelRestore = key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "cancel pending restore"))
	keyApplyRestore  = key.NewBinding(key.WithKeys("A"), key.WithHelp("A", "apply pending restore"))
)

// restoreMsg carries the state of the scheduled restore.
type restoreMsg struct{ p PendingRestore }

// checkRestore reads whether a restore is pending; admins only, as the
// banner is theirs. A failure hides the banner rather than fill the
// status line on every tick.
func (m *Model) checkRestore() tea.Cmd {
	e := m.env
	if e.deps.Backups == nil || !e.actor.IsAdministrator() {
		return nil
	}
	return func() tea.Msg {
		a, err := e.who()
		if err != nil {
			return nil // the identity check of the same tick ends the session
		}
		p, err := e.deps.Backups.PendingRestore(e.ctx, a)
		if err != nil {
			return restoreMsg{}
		}
		return restoreMsg{p: p}
	}
}

// restoreBanner is the line under the tab bar, empty when no restore
// waits.
func (m *Model) restoreBanner(w int) string {
	p := m.restore
	if !p.Pending || !m.env.actor.IsAdministrator() {
		return ""
	}
	how := ": System A applies it now, x cancels"
	if !p.CanApply {
		how = ": restart `piot run` to apply it; System x cancels"
	}
	text := "RESTORE PENDING" + how
	if !p.Created.IsZero() {
		// The backup's date only where it leaves room for how to act.
		dated := "RESTORE PENDING (backup of " + p.Created.In(m.env.now().Location()).Format("2006-01-02 15:04") + ")" + how
		if ansi.StringWidth(dated) <= w {
			text = dated
		}
	}
	return styleWarn.Render(cut(text, w))
}

// restoreKey handles the System screen's keys for the pending restore;
// ok is false for other keys.
func (s *systemScreen) restoreKey(k tea.KeyPressMsg) (cmd tea.Cmd, ok bool) {
	e := s.env
	b := e.deps.Backups
	switch {
	case !key.Matches(k, keyCancelRestore, keyApplyRestore):
		return nil, false
	case b == nil:
		return func() tea.Msg { return statusMsg{text: "restore is not available", err: true} }, true
	case key.Matches(k, keyCancelRestore):
		s.ov.ask("Cancel the pending restore? The current data stays.", func(a core.Actor) (string, error) {
			if err := b.CancelRestore(e.ctx, a); err != nil {
				return "", err
			}
			return "pending restore cancelled", nil
		})
	default:
		s.ov.ask("Restart the appliance's services now to apply the restore? Everything changed since the backup is lost.", func(a core.Actor) (string, error) {
			if err := b.ApplyRestore(e.ctx, a); err != nil {
				return "", err
			}
			return "restarting to apply the restore…", nil
		})
	}
	return nil, true
}
