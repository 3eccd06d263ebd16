package initd

import (
	"bufio"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// kmods loads the kernel modules the image bundles, as udev would: a
// module whose alias pattern matches a device's modalias, with its
// dependencies first, and every module without a device alias (file
// systems, checksums). Loading all of them costs seconds under emulation
// and on small boards; a PC needs a few, a VM others.
type kmods struct {
	wg     sync.WaitGroup
	log    *slog.Logger
	byName map[string]*kmod
	order  []*kmod // as listed: dependencies first
}

type kmod struct {
	name, path string
	deps       []string
	aliases    []string
	tried      bool
	done       chan struct{} // closed when loaded, or failed
}

func readKmods(log *slog.Logger) *kmods {
	k := &kmods{log: log, byName: map[string]*kmod{}}
	f, err := os.Open(modulesFile)
	if errors.Is(err, fs.ErrNotExist) {
		return k // a kernel built for the board has its drivers built in
	}
	if err != nil {
		log.Error("modules index", "err", err)
		return k
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		m := &kmod{name: fields[0], path: fields[1], aliases: fields[3:], done: make(chan struct{})}
		if fields[2] != "-" {
			m.deps = strings.Split(fields[2], ",")
		}
		k.byName[m.name] = m
		k.order = append(k.order, m)
	}
	return k
}

// loadAlways loads the modules that match no device and that no other
// module needs (file systems, checksums); libraries such as usbcore come
// with the drivers that need them.
func (k *kmods) loadAlways() {
	needed := map[string]bool{}
	for _, m := range k.order {
		for _, d := range m.deps {
			needed[d] = true
		}
	}
	for _, m := range k.order {
		// softdog would take /dev/watchdog before a hardware watchdog's
		// driver: startWatchdog loads it only when none came.
		if len(m.aliases) == 0 && !needed[m.name] && m.name != "softdog" {
			k.load(m)
		}
	}
}

// loadNamed loads modules by name and waits for them: file systems that
// only a mount needs (vfat, efivarfs) match no device, and their "fs-"
// aliases keep loadAlways from taking them.
func (k *kmods) loadNamed(names ...string) {
	var ms []*kmod
	for _, n := range names {
		if m := k.byName[n]; m != nil {
			k.load(m)
			ms = append(ms, m)
		}
	}
	for _, m := range ms {
		<-m.done
	}
}

// loadForDevices loads the modules the present devices need, again
// while loading them brings new devices (a PCI bridge, virtio, USB);
// it returns how many it loaded.
func (k *kmods) loadForDevices() int {
	total := 0
	for round := 0; round < 8; round++ {
		n := 0
		for _, alias := range deviceAliases() {
			// Patterns and aliases start with their bus ("pci:",
			// "usb:", "virtio:"); comparing only within a bus keeps
			// this cheap under emulation.
			bus, _, _ := strings.Cut(alias, ":")
			for _, m := range k.order {
				if m.tried {
					continue
				}
				for _, pat := range m.aliases {
					if !strings.HasPrefix(pat, bus+":") {
						continue
					}
					if ok, _ := path.Match(pat, alias); ok {
						k.load(m)
						n++
						break
					}
				}
			}
		}
		// The next round sees the devices these drivers found.
		k.wg.Wait()
		total += n
		if n == 0 {
			break
		}
	}
	return total
}

// load starts loading m after its dependencies, concurrently with the
// other modules: the kernel checks each module's signature, which is what
// takes the time, and does so on any CPU. wait waits for all of them.
func (k *kmods) load(m *kmod) {
	if m.tried {
		return
	}
	m.tried = true
	var deps []*kmod
	for _, d := range m.deps {
		if dm := k.byName[d]; dm != nil {
			k.load(dm)
			deps = append(deps, dm)
		}
	}
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		defer close(m.done)
		for _, d := range deps {
			<-d.done
		}
		if err := loadModule(m.path); err != nil && !errors.Is(err, unix.ENODEV) {
			k.log.Warn("module not loaded", "module", m.name, "err", err)
		}
	}()
}

// deviceAliases lists the modaliases of the devices the kernel knows.
func deviceAliases() []string {
	var out []string
	seen := map[string]bool{}
	files, _ := filepath.Glob("/sys/bus/*/devices/*/modalias")
	files = append(files, "/sys/devices/system/cpu/modalias")
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			if a := strings.TrimSpace(string(b)); a != "" && !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}

// loadModules loads what this machine needs at boot; findDataDevice
// calls loadForDevices again while it waits, for USB disks that appear
// late.
func loadModules(log *slog.Logger) *kmods {
	start := time.Now()
	k := readKmods(log)
	k.loadAlways()
	k.loadForDevices()
	k.wg.Wait()
	n := 0
	for _, m := range k.order {
		if m.tried {
			n++
		}
	}
	var names []string
	for _, m := range k.order {
		if m.tried {
			names = append(names, m.name)
		}
	}
	log.Info("modules loaded", "count", n, "of", len(k.order), "took", time.Since(start).Round(time.Millisecond))
	log.Debug("modules loaded", "names", strings.Join(names, " "))
	return k
}
