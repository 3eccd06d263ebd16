package initd

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/piot-appliance/piot/appliance/update"
)

// The A/B system slots (appliance/update): files on the EFI system
// partition, which is mounted only when systemd-boot started a slot.
const (
	espLabel   = "PIOT-ESP"
	espDir     = "/boot/efi"
	slotsDir   = espDir + "/EFI/Linux"
	efivarsDir = "/sys/firmware/efi/efivars"
	// outcomeFile is shared with piot run (appliance/updates.go).
	outcomeFile = dataDir + "/update.json"
	// markGoodAfter is how long piot run must stay ready before the
	// slot it runs from is trusted: long enough for a crash at the first
	// device's connection to show, short enough that a power cut soon
	// after an update does not spend a try.
	markGoodAfter = 30 * time.Second
)

// mountSlots mounts the ESP when this system was booted from a slot and
// returns the slot ("" when not: a direct kernel boot, another loader).
// It also turns an update whose slot ran out of tries into a recorded
// rollback, before piot run starts and shows it.
func (in *Init) mountSlots() string {
	if _, err := os.Stat(efivarsDir); err != nil {
		return "" // no EFI: BIOS, the Pi
	}
	in.kmods.loadNamed("efivarfs", "vfat", "nls_cp437", "nls_iso8859_1")
	// mountEssentials tried before the module was loaded.
	if err := unix.Mount("efivarfs", efivarsDir, "efivarfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		in.log.Error("mount efivarfs", "err", err)
		return ""
	}
	slot, ok, err := update.BootedSlot(efivarsDir)
	if err != nil {
		in.log.Error("booted slot", "err", err)
	}
	if !ok {
		in.log.Info("not booted from an A/B slot by systemd-boot: updates are off")
		return ""
	}
	dev := scanPartition(espLabel)
	if dev == "" {
		in.log.Error("booted from slot " + slot + " but no partition named " + espLabel)
		return ""
	}
	if err := os.MkdirAll(espDir, 0o755); err != nil {
		in.log.Error("ESP", "err", err)
		return ""
	}
	// flush: the FAT is written out as soon as a file is closed, so that a
	// power cut right after an install or a mark finds it on disk.
	// iocharset: the kernel's default (ascii) is a module the image does
	// not carry; iso8859-1 is (image/modules.txt).
	if err := unix.Mount(dev, espDir, "vfat", unix.MS_NOATIME|unix.MS_NODEV|unix.MS_NOSUID|unix.MS_NOEXEC, "umask=0077,flush,iocharset=iso8859-1"); err != nil {
		in.log.Error("mount ESP", "dev", dev, "err", err)
		return ""
	}
	in.log.Info("booted from slot", "slot", slot, "esp", dev)
	in.noteRollback(slot)
	return slot
}

// noteRollback records that the slot an update installed was given up:
// systemd-boot came back to this one because the other ran out of tries.
func (in *Init) noteRollback(slot string) {
	last, err := update.LoadOutcome(outcomeFile)
	if err != nil || last == nil || last.Result != update.ResultInstalled || last.Slot != update.Other(slot) {
		return
	}
	entries, err := update.Slots{Dir: slotsDir}.Entries()
	if err != nil {
		in.log.Error("slots", "err", err)
		return
	}
	e, ok := entries[last.Slot]
	if !ok || !e.Bad() {
		return
	}
	reason := fmt.Sprintf("slot %s (version %s) did not become ready in %d boots", last.Slot, last.Version, e.TriesDone)
	in.con0().notice("update rolled back: " + reason)
	o := update.Outcome{Result: update.ResultRolledBack, Reason: reason, Version: last.Version, Slot: last.Slot, At: time.Now().UTC()}
	if err := update.SaveOutcome(outcomeFile, o); err != nil {
		in.log.Error("update outcome", "err", err)
	}
}

// markGood trusts the running slot once piot run has stayed ready for
// markGoodAfter: systemd-boot stops counting its tries.
func (in *Init) markGood(slot, readyz string) {
	s := update.Slots{Dir: slotsDir}
	entries, err := s.Entries()
	if err != nil {
		in.log.Error("slots", "err", err)
		return
	}
	if e, ok := entries[slot]; !ok || !e.Counting {
		return
	}
	time.Sleep(markGoodAfter)
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(readyz)
	if err != nil {
		in.log.Error("not marking slot good: /readyz", "err", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		in.log.Error("not marking slot good: not ready", "status", resp.StatusCode)
		return
	}
	if err := s.MarkGood(slot); err != nil {
		in.log.Error("mark slot good", "err", err)
		return
	}
	in.log.Info("slot marked good", "slot", slot, "version", in.version)
	last, _ := update.LoadOutcome(outcomeFile)
	if last != nil && last.Result == update.ResultInstalled && last.Slot == slot {
		o := update.Outcome{Result: update.ResultGood, Version: in.version, Slot: slot, At: time.Now().UTC()}
		if err := update.SaveOutcome(outcomeFile, o); err != nil {
			in.log.Error("update outcome", "err", err)
		}
	}
}

// scanPartition returns the device of the partition with a GPT name.
func scanPartition(label string) string {
	parts, _ := filepath.Glob("/sys/class/block/*/uevent")
	for _, u := range parts {
		b, err := os.ReadFile(u)
		if err != nil {
			continue
		}
		var name, partname string
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "DEVNAME="); ok {
				name = v
			}
			if v, ok := strings.CutPrefix(l, "PARTNAME="); ok {
				partname = v
			}
		}
		if partname == label && name != "" {
			return "/dev/" + name
		}
	}
	return ""
}
