package initd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/piot-appliance/piot/appliance/config"
	"github.com/piot-appliance/piot/appliance/osctl"
)

// serveControl answers `piot run` on a socket only root can open.
func (in *Init) serveControl() error {
	_ = os.Remove(controlSocket)
	ln, err := net.Listen("unix", controlSocket)
	if err != nil {
		return err
	}
	if err := os.Chmod(controlSocket, 0o600); err != nil {
		ln.Close()
		return err
	}
	go func() {
		if err := osctl.Serve(ln, in); err != nil {
			in.log.Error("control socket", "err", err)
		}
	}()
	return nil
}

// State implements osctl.Handler.
func (in *Init) State() osctl.State {
	in.mu.Lock()
	o := in.cfg.OS
	in.mu.Unlock()
	st := osctl.State{Settings: settingsOf(o), Version: in.version}
	for _, a := range in.net.addresses() {
		st.Addresses = append(st.Addresses, fmt.Sprintf("%s %s (%s)", a.iface, a.addr, a.how))
	}
	if in.clock != nil {
		st.ClockSynced, st.LastSync = in.clock.Synced(), in.clock.LastSync()
	}
	if in.svc != nil {
		st.Restarts = in.svc.Restarts()
	}
	in.mu.Lock()
	st.RebootAt = in.rebootAt
	in.mu.Unlock()
	return st
}

// maxRebootAhead bounds a scheduled reboot: further ahead is more likely
// a mistaken date than a plan.
const maxRebootAhead = 31 * 24 * time.Hour

// ScheduleReboot implements osctl.Handler. The schedule lives in init,
// so that it holds while piot run restarts; a power cut cancels it,
// having rebooted anyway.
func (in *Init) ScheduleReboot(at time.Time) error {
	now := time.Now()
	if !at.IsZero() && (at.Before(now.Add(-time.Minute)) || at.After(now.Add(maxRebootAhead))) {
		return osctl.BadInput{Err: fmt.Errorf("reboot time %s: want a time from now to %s ahead", at.Format(time.RFC3339), maxRebootAhead)}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.rebootTimer != nil {
		in.rebootTimer.Stop()
		in.rebootTimer = nil
	}
	in.rebootAt = at
	if at.IsZero() {
		in.log.Info("scheduled reboot cancelled")
		return nil
	}
	in.log.Info("reboot scheduled", "at", at)
	in.rebootTimer = time.AfterFunc(time.Until(at), func() { in.request(actReboot) })
	return nil
}

func settingsOf(o config.OS) osctl.Settings {
	return osctl.Settings{
		Hostname: o.Hostname, Network: o.Network, NetInterface: o.NetInterface,
		NetAddress: o.NetAddress, NetGateway: o.NetGateway, NetDNS: o.NetDNS,
		NTPServers: o.NTPServers, Timezone: o.Timezone,
	}
}

// Apply implements osctl.Handler: the settings are validated and stored
// in /data/piot.yaml (config.Update refuses a bad value and leaves the
// file as it was), then applied without a reboot.
func (in *Init) Apply(_ context.Context, s osctl.Settings) error {
	values := map[string]string{
		"hostname": s.Hostname, "network": s.Network, "net-interface": s.NetInterface,
		"net-address": s.NetAddress, "net-gateway": s.NetGateway,
		"net-dns": strings.Join(s.NetDNS, ","), "ntp-servers": strings.Join(s.NTPServers, ","),
		"timezone": s.Timezone,
	}
	if err := config.Update(configFile, values); err != nil {
		return osctl.BadInput{Err: err}
	}
	cfg, err := config.LoadFile(configFile)
	if err != nil {
		return osctl.BadInput{Err: err}
	}
	in.mu.Lock()
	old := in.cfg.OS
	in.cfg = cfg
	in.mu.Unlock()
	now := cfg.OS
	var errs []error
	if now.Hostname != old.Hostname {
		if err := setHostname(now.Hostname); err != nil {
			errs = append(errs, err)
		}
		in.log.Info("host name set", "hostname", now.Hostname)
	}
	if now.Network != old.Network || now.NetInterface != old.NetInterface || now.NetAddress != old.NetAddress ||
		now.NetGateway != old.NetGateway || strings.Join(now.NetDNS, ",") != strings.Join(old.NetDNS, ",") ||
		now.Hostname != old.Hostname {
		in.net.apply(now)
	}
	if strings.Join(now.NTPServers, ",") != strings.Join(old.NTPServers, ",") {
		in.clock.SetServers(now.NTPServers)
	}
	// The server certificate names the host: piot run reissues it on
	// SIGHUP when the name or an address changed.
	in.svc.signal(syscall.SIGHUP)
	return errors.Join(errs...)
}

// Do implements osctl.Handler.
func (in *Init) Do(a osctl.Action) error {
	switch a {
	case osctl.Reboot:
		in.request(actReboot)
	case osctl.PowerOff:
		in.request(actPowerOff)
	case osctl.Restart:
		// From a goroutine: the request comes from the process that is
		// about to be stopped and must get its answer first.
		go in.svc.Restart()
	default:
		return fmt.Errorf("unknown action %q", a)
	}
	return nil
}
