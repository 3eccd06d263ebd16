package tui

import (
	"context"
	"errors"
	"fmt"

	tea "charm.land/bubbletea/v2"
	"github.com/piot-appliance/piot/services/core"
)

// RunLocal runs the console on a local terminal (the serial or VGA console
// of the image) as actor, until the user quits or ctx ends. opts may set
// the input and output (tea.WithInput/WithOutput on a tty other than the
// process's own).
func RunLocal(ctx context.Context, deps Deps, actor core.Actor, opts ...tea.ProgramOption) error {
	if deps.Core == nil {
		return errors.New("tui: no core")
	}
	if !actor.Authenticated() {
		return errors.New("tui: the console needs a user")
	}
	deps.Source = core.Source{Via: core.ViaConsole, Addr: "local terminal"}
	m := NewModel(deps, ProfileIdentity(deps.Core, actor))
	defer m.Close()
	p := tea.NewProgram(m, append([]tea.ProgramOption{tea.WithContext(ctx)}, opts...)...)
	_, err := p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("tui: %w", err)
	}
	if r := m.Ended(); r != "" {
		return fmt.Errorf("tui: session ended: %s", r)
	}
	return nil
}
