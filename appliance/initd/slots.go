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

	"github.com/piot-appliance/piot/appliance/dataformat"
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

// slotEntry is the running slot's file on the ESP.
func (in *Init) slotEntry(slot string) (update.Entry, bool) {
	entries, err := update.Slots{Dir: slotsDir}.Entries()
	if err != nil {
		in.log.Error("slots", "err", err)
		return update.Entry{}, false
	}
	e, ok := entries[slot]
	return e, ok
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
	if last.Reason != "" {
		reason += "; " + last.Reason
	}
	in.con0().notice("update rolled back: " + reason)
	o := update.Outcome{Result: update.ResultRolledBack, Reason: reason, Detail: last.Detail, Version: last.Version, Slot: last.Slot, At: time.Now().UTC()}
	if err := update.SaveOutcome(outcomeFile, o); err != nil {
		in.log.Error("update outcome", "err", err)
	}
}

// trialCrashes is how many exits of piot run fail a slot's trial boot
// before the trial timeout: the service restarts it with a growing delay,
// so three exits take a few seconds and rule out a single hiccup.
const trialCrashes = 3

// watchTrial decides the boot of a slot being tried (an update's first
// boots, whose file name carries systemd-boot's counter): the slot is
// marked good once piot run has stayed ready for update-mark-good-after.
// When piot run keeps exiting, or is not ready long enough within
// update-trial-timeout, this boot failed: init reboots, which spends one
// of the slot's tries, and after the last systemd-boot boots the previous
// slot, where noteRollback records why. A hang of the kernel or of init
// itself is left to the watchdog (watchdog.go): its reset spends a try
// the same way.
func (in *Init) watchTrial(slot string, e update.Entry, readyz string) {
	in.mu.Lock()
	u := in.cfg.Update
	in.mu.Unlock()
	in.log.Info("slot on trial", "slot", slot, "boot", e.TriesDone, "of", e.TriesDone+e.TriesLeft,
		"mark_good_after", u.MarkGoodAfter, "trial_timeout", u.TrialTimeout)
	deadline := time.NewTimer(u.TrialTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	c := &http.Client{Timeout: 2 * time.Second}
	var readySince time.Time
	crashes := 0
	for {
		select {
		case x := <-in.svc.exits:
			readySince = time.Time{}
			crashes++
			if crashes >= trialCrashes {
				in.failTrial(slot, e, fmt.Sprintf("piot run exited %d times (%s)", crashes, x.why), x.last)
				return
			}
		case <-deadline.C:
			in.failTrial(slot, e, fmt.Sprintf("piot run was not ready for %s within %s", u.MarkGoodAfter, u.TrialTimeout), "")
			return
		case <-tick.C:
			if !isReady(c, readyz) {
				readySince = time.Time{}
				continue
			}
			if readySince.IsZero() {
				readySince = time.Now()
			}
			if time.Since(readySince) >= u.MarkGoodAfter {
				in.markGood(slot)
				return
			}
		}
	}
}

func isReady(c *http.Client, readyz string) bool {
	resp, err := c.Get(readyz)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// failTrial gives up this boot of a slot on trial: the reason (and
// piot run's last words, which only admins see) go with the install's
// outcome, so that the previous slot can say why it runs again, and the
// reboot spends the try.
func (in *Init) failTrial(slot string, e update.Entry, why, detail string) {
	reason := fmt.Sprintf("boot %d of %d: %s", e.TriesDone, e.TriesDone+e.TriesLeft, why)
	last, err := update.LoadOutcome(outcomeFile)
	if err != nil {
		in.log.Error("update outcome", "err", err)
	}
	if last != nil && last.Result == update.ResultInstalled && last.Slot == slot {
		last.Reason, last.Detail = reason, detail
		if err := update.SaveOutcome(outcomeFile, *last); err != nil {
			in.log.Error("update outcome", "err", err)
		}
	}
	next := fmt.Sprintf("rebooting: %d tries left", e.TriesLeft)
	if e.TriesLeft == 0 {
		next = "rebooting into slot " + update.Other(slot)
	}
	in.log.Error("slot on trial failed", "slot", slot, "reason", reason)
	in.con0().notice(fmt.Sprintf("update on trial in slot %s failed (%s); %s", slot, reason, next))
	in.request(actReboot)
}

// markGood trusts the running slot: systemd-boot stops counting its
// tries.
func (in *Init) markGood(slot string) {
	if err := (update.Slots{Dir: slotsDir}).MarkGood(slot); err != nil {
		in.log.Error("mark slot good", "err", err)
		return
	}
	in.log.Info("slot marked good", "slot", slot, "version", in.version)
	// A rollback can no longer happen: the data as it was before this
	// version migrated it is not needed.
	if removed, err := dataformat.RemoveSnapshots(dataDir); err != nil {
		in.log.Error("data snapshots", "err", err)
	} else if len(removed) > 0 {
		in.log.Info("data snapshots removed", "files", removed)
	}
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
