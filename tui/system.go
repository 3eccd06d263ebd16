package tui

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/piot-appliance/piot/services/core"
)

// systemScreen shows the appliance's addresses, listeners and log, and
// runs maintenance actions (admins only).
type systemScreen struct {
	env       *env
	ov        overlay
	loaded    bool
	addrs     []string
	listeners []Listener
	logs      []string
	upd       *UpdateInfo // nil: not booted from a slot
}

type systemMsg struct {
	addrs     []string
	listeners []Listener
	logs      []string
	upd       *UpdateInfo
}

var (
	keyRegenTLS = key.NewBinding(key.WithKeys("g"), key.WithHelp("g", "regenerate TLS"))
	keyBackup   = key.NewBinding(key.WithKeys("b"), key.WithHelp("b", "backup"))
	keyRestore  = key.NewBinding(key.WithKeys("R"), key.WithHelp("R", "restore"))
	keyReboot   = key.NewBinding(key.WithKeys("B"), key.WithHelp("B", "reboot"))
	keyPowerOff = key.NewBinding(key.WithKeys("P"), key.WithHelp("P", "power off"))
	keyOS       = key.NewBinding(key.WithKeys("o"), key.WithHelp("o", "OS settings"))
	keyUpdate   = key.NewBinding(key.WithKeys("u"), key.WithHelp("u", "install update"))
)

// systemTickMsg refreshes the screen while a download runs.
type systemTickMsg struct{}

func newSystem(e *env) *systemScreen {
	return &systemScreen{env: e, ov: overlay{tag: "system", env: e}}
}

func (s *systemScreen) title() string   { return "System" }
func (s *systemScreen) adminOnly() bool { return true }
func (s *systemScreen) capturing() bool { return s.ov.active() }
func (s *systemScreen) keys() []key.Binding {
	return []key.Binding{keyOS, keyUpdate, keyBackup, keyRestore, keyRegenTLS, keyReboot, keyPowerOff, keyCancelRestore, keyApplyRestore}
}

func (s *systemScreen) refresh() tea.Cmd {
	e := s.env
	if !e.actor.IsAdministrator() {
		return nil
	}
	return e.run(func(a core.Actor) (tea.Msg, error) {
		if err := core.AuthorizeAdmin(a, core.ActAdminister); err != nil {
			return nil, err
		}
		msg := systemMsg{addrs: interfaceAddrs()}
		if e.deps.System != nil {
			msg.listeners = e.deps.System.Listeners()
			msg.logs = e.deps.System.LogTail(200)
			u, err := e.deps.System.Updates(e.ctx, a)
			switch {
			case err == nil:
				msg.upd = &u
			case !errors.Is(err, ErrUnsupported):
				return nil, err
			}
		}
		return msg, nil
	})
}

// updateLines show the slots and the last update: a rollback in red,
// with its reason, since it is why an older version runs.
func (s *systemScreen) updateLines(u *UpdateInfo, width int) []string {
	other := "empty"
	if u.OtherSlotVersion != "" {
		other = printable(u.OtherSlotVersion) + " (" + u.OtherSlotState + ")"
	}
	lines := []string{cut(fmt.Sprintf("  running %s from slot %s · other slot: %s", printable(u.Version), u.Slot, other), width)}
	if u.LastResult != "" {
		last := fmt.Sprintf("  last update: %s %s, %s", u.LastResult, printable(u.LastVersion), u.LastAt.In(s.env.now().Location()).Format("2006-01-02 15:04"))
		if u.LastResult == "rolled-back" || u.LastResult == "failed" {
			last = styleErr.Render(cut(last, width))
		}
		lines = append(lines, cut(last, width))
		if u.LastReason != "" {
			lines = append(lines, cut("    "+printable(u.LastReason), width))
		}
	}
	if d := u.Download; d != nil {
		switch {
		case d.Running:
			lines = append(lines, cut(fmt.Sprintf("  downloading %d%% (%s of %s) from %s", d.Done*100/max(d.Total, 1), mib(d.Done), mib(d.Total), printable(d.URL)), width))
		case d.Err != "":
			lines = append(lines, styleErr.Render(cut("  download failed: "+printable(d.Err), width)))
		}
	}
	if !u.RebootAt.IsZero() {
		lines = append(lines, cut("  reboot scheduled at "+u.RebootAt.In(s.env.now().Location()).Format("2006-01-02 15:04"), width))
	}
	return lines
}

// mib shows a byte count in MiB.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// interfaceAddrs lists the addresses of the interfaces that are up, except
// loopback.
func interfaceAddrs() []string {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []string
	for _, in := range ifs {
		if in.Flags&net.FlagUp == 0 || in.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := in.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			out = append(out, in.Name+" "+a.String())
		}
	}
	return out
}

func (s *systemScreen) update(msg tea.Msg) tea.Cmd {
	if handled, cmd := s.ov.update(msg); handled {
		return cmd
	} else if d, ok := msg.(doneMsg); ok && d.tag == s.ov.tag {
		return tea.Batch(cmd, s.refresh())
	}
	switch msg := msg.(type) {
	case systemMsg:
		s.loaded = true
		s.addrs, s.listeners, s.logs, s.upd = msg.addrs, msg.listeners, msg.logs, msg.upd
		if s.upd != nil && s.upd.Download != nil && s.upd.Download.Running {
			return tea.Tick(time.Second, func(time.Time) tea.Msg { return systemTickMsg{} })
		}
	case systemTickMsg:
		return s.refresh()
	case tea.KeyPressMsg:
		return s.key(msg)
	}
	return nil
}

func (s *systemScreen) key(k tea.KeyPressMsg) tea.Cmd {
	e := s.env
	if cmd, ok := s.restoreKey(k); ok {
		return cmd
	}
	sys := e.deps.System
	if sys == nil {
		if key.Matches(k, keyOS, keyUpdate, keyBackup, keyRestore, keyRegenTLS, keyReboot, keyPowerOff) {
			return func() tea.Msg { return statusMsg{text: "system actions are not available", err: true} }
		}
		return nil
	}
	switch {
	case key.Matches(k, keyOS):
		cur, err := sys.OSSettings(e.ctx, e.actor)
		if err != nil {
			return func() tea.Msg { return e.errMsg(err, e.actor.IsAdministrator()) }
		}
		f := newForm("Operating system").
			text("hostname", "Host name", cur.Hostname, "hostname").
			pick("network", "Network", []string{"dhcp", "static"}, []string{"DHCP", "static address"}, cur.Network, "network").
			text("iface", "Interface (static)", cur.NetInterface, "net-interface").
			text("address", "Address/prefix (static)", cur.NetAddress, "net-address").
			text("gateway", "Gateway (static)", cur.NetGateway, "net-gateway").
			text("dns", "DNS servers (static)", cur.NetDNS, "net-dns").
			text("ntp", "NTP servers", cur.NTPServers, "ntp-servers").
			text("tz", "Time zone", cur.Timezone, "timezone")
		f.note = "Applied now (the time zone at the next start) and kept in /data/piot.yaml. Lists are comma-separated; an empty interface is the first Ethernet one."
		return s.ov.open(f, func(a core.Actor, f *form) (string, error) {
			v := func(k string) string { return strings.TrimSpace(f.value(k)) }
			err := sys.SetOSSettings(e.ctx, a, OSSettings{
				Hostname: v("hostname"), Network: v("network"), NetInterface: v("iface"),
				NetAddress: v("address"), NetGateway: v("gateway"), NetDNS: v("dns"),
				NTPServers: v("ntp"), Timezone: v("tz"),
			})
			if err != nil {
				return "", err
			}
			return "OS settings applied", nil
		})
	case key.Matches(k, keyUpdate):
		f := newForm("Install an update").text("url", "Bundle URL", "", "url")
		f.note = "The appliance downloads the signed bundle (http or https) itself, verifies it before writing anything and installs it into the other slot; a dropped download continues where it stopped. Then reboot (B) to try it: a version that does not become ready is rolled back by itself."
		return s.ov.open(f, func(a core.Actor, f *form) (string, error) {
			u := strings.TrimSpace(f.value("url"))
			if err := sys.FetchUpdate(e.ctx, a, u); err != nil {
				return "", err
			}
			return "downloading " + u, nil
		})
	case key.Matches(k, keyRegenTLS):
		s.ov.ask("Reissue the MQTT server certificate? Devices that trust the appliance CA are unaffected.", func(a core.Actor) (string, error) {
			if err := sys.RegenerateTLS(e.ctx, a); err != nil {
				return "", err
			}
			return "TLS certificates regenerated", nil
		})
	case key.Matches(k, keyBackup):
		f := newForm("Backup the store").text("path", "File", "", "path")
		f.note = "A file on the appliance; empty lets the appliance choose one in its data directory."
		return s.ov.open(f, func(a core.Actor, f *form) (string, error) {
			p, err := sys.Backup(e.ctx, a, strings.TrimSpace(f.value("path")))
			if err != nil {
				return "", err
			}
			return "backup written to " + p, nil
		})
	case key.Matches(k, keyRestore):
		f := newForm("Restore the store from a backup").
			text("path", "File", "", "path").
			boolean("sure", "Replace all current data", false)
		f.note = "Everything changed since the backup is lost."
		return s.ov.open(f, func(a core.Actor, f *form) (string, error) {
			if f.value("sure") != "yes" {
				return "", &core.Error{Code: core.CodeBadInput, Msg: "Replace all current data: say yes to restore"}
			}
			if err := sys.Restore(e.ctx, a, strings.TrimSpace(f.value("path"))); err != nil {
				return "", err
			}
			return "restore scheduled: it is applied when the appliance restarts (in the image: now)", nil
		})
	case key.Matches(k, keyReboot):
		s.ov.ask("Reboot the appliance now?", func(a core.Actor) (string, error) {
			return "rebooting…", sys.Reboot(e.ctx, a)
		})
	case key.Matches(k, keyPowerOff):
		s.ov.ask("Power the appliance off now? Someone must switch it on again.", func(a core.Actor) (string, error) {
			return "powering off…", sys.PowerOff(e.ctx, a)
		})
	}
	return nil
}

func (s *systemScreen) view(width, height int) string {
	if s.ov.form != nil || s.ov.shown != nil {
		return s.ov.view(width, height)
	}
	if !s.env.actor.IsAdministrator() {
		return "Only admins see the system screen."
	}
	if !s.loaded {
		return styleDim.Render("loading…")
	}
	var lines []string
	lines = append(lines, styleTitle.Render("Network"))
	if len(s.addrs) == 0 {
		lines = append(lines, styleDim.Render("  no addresses"))
	}
	for _, a := range s.addrs {
		lines = append(lines, cut("  "+a, width))
	}
	if u := s.upd; u != nil {
		lines = append(lines, styleTitle.Render("Updates"))
		lines = append(lines, s.updateLines(u, width)...)
	}
	lines = append(lines, styleTitle.Render("Listeners"))
	if s.env.deps.System == nil {
		lines = append(lines, styleDim.Render("  not available"))
	}
	for _, l := range s.listeners {
		tls := ""
		if l.TLS {
			tls = "TLS"
		}
		exp := ""
		if !l.Expires.IsZero() {
			exp = "expires " + l.Expires.UTC().Format("2006-01-02")
			if l.Expires.Before(s.env.now()) {
				exp = styleErr.Render("EXPIRED " + l.Expires.UTC().Format("2006-01-02"))
			}
		}
		lines = append(lines, cut(fmt.Sprintf("  %-10s %-21s %-3s %s %s", printable(l.Name), printable(l.Addr), tls, printable(l.CertSHA), exp), width))
	}
	lines = append(lines, styleTitle.Render("Log"))
	room := height - len(lines)
	if s.ov.confirm != nil {
		room--
	}
	logs := s.logs
	if len(logs) > room {
		logs = logs[len(logs)-max(room, 0):]
	}
	if len(logs) == 0 && room > 0 {
		lines = append(lines, styleDim.Render("  no log lines"))
	}
	for _, l := range logs {
		lines = append(lines, cut("  "+printable(l), width))
	}
	body := strings.Join(lines, "\n")
	if s.ov.confirm != nil {
		return fitLines(body, width, height-1) + "\n" + s.ov.confirm.view(width)
	}
	return body
}
