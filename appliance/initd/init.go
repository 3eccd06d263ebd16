// Package initd is `piot init`, PID 1 of the appliance image: it mounts
// the kernel file systems, loads the modules the image lists, finds and
// mounts the data partition (formatting it when blank), provisions
// /data/piot.yaml at first boot, sets the host name, network and clock,
// supervises `piot run`, serves the box's own consoles, and powers off or
// reboots with the data file system cleanly unmounted. It is the only
// userland: there is no shell in the image.
package initd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/piot-appliance/piot/appliance/config"
	"github.com/piot-appliance/piot/internal/fileutil"
	"golang.org/x/sys/unix"
)

// Paths of the image.
const (
	dataDir    = "/data"
	configFile = dataDir + "/piot.yaml"
	// lastGoodConfig is the configuration of the last boot that became
	// ready.
	lastGoodConfig = dataDir + "/piot.yaml.last-good"
	defaultConfig  = "/etc/piot/piot.yaml" // the image's defaults (image/rootfs)
	modulesFile    = "/etc/piot/modules"
	buildTimeFile  = "/etc/piot/build-time"
	runDir         = "/run/piot"
	controlSocket  = runDir + "/init.sock"
	resolvConf     = runDir + "/resolv.conf" // /etc/resolv.conf links here
	localSSH       = "127.0.0.1:22"          // the image's ssh-addr is :22
	// stopGrace is how long piot run may take to stop at power off; its
	// own shutdown timeout is 15 s.
	stopGrace = 25 * time.Second
)

// Init is the running PID 1.
type Init struct {
	version string
	log     *slog.Logger
	out     *os.File // /dev/console
	procs   *procs
	boot    bootArgs
	svc     *service
	con     *console
	net     *network
	clock   *clock
	logw    *initLog
	kmods   *kmods
	slot    string // the A/B slot booted from, "" when none

	mu          sync.Mutex
	cfg         config.Config
	firstBoot   bool
	powerAction chan powerAction
	rebootAt    time.Time // zero: none scheduled
	rebootTimer *time.Timer
}

// Run is PID 1's main. It returns only if it cannot even start; the
// kernel panics when PID 1 exits, so the caller halts instead.
func Run(version string) {
	out, err := os.OpenFile("/dev/console", os.O_WRONLY, 0)
	if err != nil {
		out = os.Stderr
	}
	in := &Init{version: version, out: out, procs: newProcs(), powerAction: make(chan powerAction, 1)}
	in.logw = &initLog{console: out}
	in.log = slog.New(slog.NewTextHandler(in.logw, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// run returns only when the boot failed.
	in.halt(in.run())
}

func (in *Init) run() error {
	started := time.Now()
	if err := mountEssentials(); err != nil {
		return err
	}
	quietKernel()
	go in.procs.reap(context.Background())
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPWR, syscall.SIGUSR1, syscall.SIGUSR2)
	go in.handleSignals(signals)
	fmt.Fprintf(in.out, "\r\npiot %s starting\r\n", in.version)

	boot, err := readBootArgs()
	if err != nil {
		// A typo on the kernel command line must not stop the appliance.
		in.con0().notice(err.Error() + " (ignored)")
	}
	in.boot = boot
	in.kmods = loadModules(in.log)
	in.startWatchdog()
	_ = os.Symlink("/proc/self/fd", "/dev/fd")
	if err := in.prepareData(); err != nil {
		return err
	}
	if err := in.provision(); err != nil {
		return err
	}
	cfg := in.loadConfig()
	in.cfg = cfg
	if err := setHostname(cfg.OS.Hostname); err != nil {
		in.log.Error("host name", "err", err)
	}
	in.net = newNetwork(in.log)
	in.net.apply(cfg.OS)
	in.setClock(cfg.OS.NTPServers)
	if err := in.serveControl(); err != nil {
		in.log.Error("control socket", "err", err)
	}
	in.con = newConsole(in.procs, in.log, in.out, in.banner, in.timezone)
	in.svc = newService(in.procs, in.log, in.con, in.timezone)
	in.slot = in.mountSlots()
	if in.slot != "" {
		in.svc.argv = append(in.svc.argv, "--update-slots-dir", slotsDir)
	}
	go in.svc.loop()
	if in.slot != "" {
		if e, ok := in.slotEntry(in.slot); ok && e.Counting {
			go in.watchTrial(in.slot, e, in.readyzURL())
		}
	}
	in.con.serve()
	in.log.Info("init ready", "took", time.Since(started).Round(time.Millisecond), "uptime", uptime())
	go in.logReady()
	in.shutdown(<-in.powerAction)
	return errors.New("shutdown returned")
}

// logReady notes when the appliance answers /readyz: the boot time.
func (in *Init) logReady() {
	readyz := in.readyzURL()
	c := &http.Client{Timeout: 2 * time.Second}
	for !isReady(c, readyz) {
		time.Sleep(100 * time.Millisecond)
	}
	in.log.Info("appliance ready", "uptime", uptime())
	in.keepGoodConfig()
	in.logw.settle()
}

// readyzURL is piot run's /readyz on this machine.
func (in *Init) readyzURL() string {
	in.mu.Lock()
	addr := in.cfg.HTTP.Addr
	in.mu.Unlock()
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	return "http://" + addr + "/readyz"
}

// initLog is init's log: on the console while the system comes up, then
// only in /run/piot/init.log, so that DHCP renewals and NTP retries do not
// write over a console someone is using. Notices for the admin still go
// to the terminals (console.notice).
type initLog struct {
	mu      sync.Mutex
	console io.Writer
	file    *os.File
	settled bool
}

func (l *initLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file == nil {
		l.file, _ = os.OpenFile(runDir+"/init.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	}
	if l.file != nil {
		_, _ = l.file.Write(p)
	}
	if !l.settled {
		_, _ = l.console.Write(bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n")))
	}
	return len(p), nil
}

func (l *initLog) settle() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.settled = true
}

// uptime is the time since the kernel started, the boot time that
// counts.
func uptime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano()).Round(10 * time.Millisecond)
}

// loadConfig reads /data/piot.yaml. A file piot run would refuse (say a
// key a new version no longer knows) would keep the appliance in a
// crash loop with no way to fix it, as the image has no shell: it is set
// aside, with a notice, and the last configuration that booted is put
// back (or the image's defaults).
func (in *Init) loadConfig() config.Config {
	cfg, err := config.LoadFile(configFile)
	if err == nil {
		return cfg
	}
	aside := fmt.Sprintf("%s.invalid-%s", configFile, time.Now().UTC().Format("20060102T150405Z"))
	from := lastGoodConfig
	good, gerr := config.LoadFile(lastGoodConfig)
	if gerr != nil {
		from, good = defaultConfig, config.Default()
		if d, derr := config.LoadFile(defaultConfig); derr == nil {
			good = d
		}
	}
	raw, rerr := os.ReadFile(from)
	if rerr == nil {
		if err2 := os.Rename(configFile, aside); err2 == nil {
			rerr = fileutil.WriteFile(configFile, raw, 0o600)
		} else {
			rerr = err2
		}
	}
	if rerr != nil {
		in.con0().notice(fmt.Sprintf("configuration %s: %v; and it could not be replaced: %v", configFile, err, rerr))
		return good
	}
	in.con0().notice(fmt.Sprintf("configuration %s: %v\nIt is kept as %s; the appliance starts with %s.", configFile, err, aside, from))
	return good
}

// keepGoodConfig remembers the configuration the appliance became ready
// with.
func (in *Init) keepGoodConfig() {
	raw, err := os.ReadFile(configFile)
	if err == nil {
		err = fileutil.WriteFile(lastGoodConfig, raw, 0o600)
	}
	if err != nil {
		in.log.Warn("last good configuration not kept", "err", err)
	}
}

// con0 is a console for notices before the console loop exists.
func (in *Init) con0() *console { return newConsole(in.procs, in.log, in.out, nil, nil) }

func (in *Init) timezone() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.cfg.OS.Timezone
}

// prepareData finds, formats or repairs, and mounts the data partition.
func (in *Init) prepareData() error {
	dev, err := findDataDevice(context.Background(), in.boot.Device, in.kmods)
	if err != nil {
		return err
	}
	state, err := probeDisk(dev)
	if err != nil {
		return err
	}
	if state == diskBlank || in.boot.Data == "format" {
		// Only a partition about to be formatted grows: growing an ext4
		// online leaves backup superblocks that e2fsck cannot repair
		// from (seen in the superblock test), and the backups are what
		// piot.data=repair relies on.
		if grown, err := growDataPartition(dev); err != nil {
			in.con0().notice("the data partition could not grow to the end of the disk: " + err.Error())
		} else if grown {
			in.con0().notice("the data partition " + dev + " now fills the disk")
		}
	}
	switch {
	case in.boot.Data == "format":
		in.con0().notice("piot.data=format: re-creating the data file system on " + dev + "; everything on it is lost")
		if err := formatData(in.procs, in.out, dev); err != nil {
			return fmt.Errorf("format %s: %w", dev, err)
		}
	case state == diskBlank:
		in.con0().notice("first boot: formatting the data partition " + dev)
		if err := formatData(in.procs, in.out, dev); err != nil {
			return fmt.Errorf("format %s: %w", dev, err)
		}
	case in.boot.Data == "repair":
		in.con0().notice("piot.data=repair: checking and repairing " + dev + " with e2fsck")
		if err := repairData(in.procs, in.out, dev); err != nil {
			return fmt.Errorf("repair %s: %w", dev, err)
		}
	}
	err = mountData(dev)
	if err == nil {
		return nil
	}
	// A damaged data partition is never re-created on its own: it holds
	// the only copy of the organisation's data, and e2fsck can usually
	// bring it back from a backup superblock. The admin decides.
	return &dataError{dev: dev, err: err}
}

type dataError struct {
	dev string
	err error
}

func (e *dataError) Error() string {
	return fmt.Sprintf(`THE DATA PARTITION %s CANNOT BE MOUNTED: %v

The appliance has stopped here and changed nothing on the disk.
To try a repair (e2fsck, which uses a backup superblock when needed),
boot once with the kernel argument   piot.data=repair
To give up its data and start empty, boot with   piot.data=format
(in the boot menu, press e on the entry to add an argument).`, e.dev, e.err)
}

// halt shows why the appliance stopped and waits: PID 1 must not exit,
// and a reboot loop would hide the message. Ctrl-Alt-Del still reboots.
func (in *Init) halt(err error) {
	var de *dataError
	msg := err.Error()
	if !errors.As(err, &de) {
		msg = "boot failed: " + msg
	}
	for {
		in.con0().notice(msg)
		select {
		case act := <-in.powerAction:
			in.shutdown(act)
		case <-time.After(5 * time.Minute):
		}
	}
}

func (in *Init) handleSignals(ch <-chan os.Signal) {
	for s := range ch {
		switch s {
		case syscall.SIGINT, syscall.SIGUSR1: // Ctrl-Alt-Del
			in.request(actReboot)
		case syscall.SIGTERM, syscall.SIGPWR, syscall.SIGUSR2:
			in.request(actPowerOff)
		}
	}
}

type powerAction int

const (
	actPowerOff powerAction = iota
	actReboot
)

func (in *Init) request(a powerAction) {
	select {
	case in.powerAction <- a:
	default: // one is under way
	}
}

// shutdown stops everything and powers off or reboots; the data file
// system is unmounted, or at least read-only, before the power goes.
func (in *Init) shutdown(a powerAction) {
	what := "powering off"
	if a == actReboot {
		what = "rebooting"
	}
	fmt.Fprintf(in.out, "\r\npiot: %s\r\n", what)
	if in.con != nil {
		in.con.close()
	}
	if in.svc != nil {
		in.svc.stop(stopGrace)
	}
	if in.net != nil {
		in.net.stop()
	}
	if in.clock != nil {
		in.clock.stop()
	}
	// Whatever else runs (a console session, a helper) gets a moment.
	_ = syscall.Kill(-1, syscall.SIGTERM)
	time.Sleep(500 * time.Millisecond)
	_ = syscall.Kill(-1, syscall.SIGKILL)
	unix.Sync()
	if err := unmountData(); err != nil {
		fmt.Fprintf(in.out, "piot: %v\r\n", err)
	}
	if in.slot != "" {
		_ = unix.Unmount(espDir, 0)
	}
	unix.Sync()
	cmd := unix.LINUX_REBOOT_CMD_POWER_OFF
	if a == actReboot {
		cmd = unix.LINUX_REBOOT_CMD_RESTART
	}
	_ = unix.Reboot(cmd)
	select {} // the kernel takes it from here
}

func unmountData() error {
	var err error
	for i := 0; i < 20; i++ {
		if err = unix.Unmount(dataDir, 0); err == nil || errors.Is(err, unix.EINVAL) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Something still holds a file: read-only is as safe for the
	// journal.
	if rerr := unix.Mount("", dataDir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); rerr != nil {
		return fmt.Errorf("unmount %s: %v; remount read-only: %v", dataDir, err, rerr)
	}
	return nil
}

// banner is what each terminal shows before the console is opened.
func (in *Init) banner() string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "PIOT appliance %s — %s\n", in.version, host)
	addrs := in.net.addresses()
	if len(addrs) == 0 {
		b.WriteString("  no network address yet\n")
	}
	for _, a := range addrs {
		ip, _, _ := strings.Cut(a.addr, "/")
		fmt.Fprintf(&b, "  %s %s  →  https://%s/   ssh -p 22 admin@%s   mqtts://%s:8883\n", a.iface, a.addr, ip, ip, ip)
	}
	in.mu.Lock()
	first := in.firstBoot
	in.mu.Unlock()
	if first {
		if pw, err := os.ReadFile(dataDir + "/admin-password"); err == nil {
			fmt.Fprintf(&b, "  First boot: admin@piot.local's password is %s (kept in /data/admin-password; change it)\n", strings.TrimSpace(string(pw)))
		}
	}
	return b.String()
}
