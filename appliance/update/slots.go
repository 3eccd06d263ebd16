package update

import (
	"bufio"
	"bytes"
	"debug/pe"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/piot-appliance/piot/internal/fileutil"
)

// The system slots are whole files on the EFI system partition, in the
// directory systemd-boot reads type 2 entries from (EFI/Linux):
// piot-a.efi and piot-b.efi. An entry being tried carries systemd-boot's
// boot counter in its name, piot-b+3.efi: systemd-boot renames it to
// piot-b+2-1.efi before it boots it, and sorts an entry at +0 behind the
// others, so that a slot that never gets marked good is left for the other
// one. Marking good is renaming back to piot-b.efi. Among the entries not
// marked bad, systemd-boot (loader.conf: default piot-*) takes the one whose
// os-release IMAGE_VERSION sorts highest; image/build.sh starts it with the
// build time, so a newly installed slot is preferred to the running one.

// Slot names.
const (
	SlotA = "a"
	SlotB = "b"
)

// DefaultTries is how many boots a freshly installed slot gets to become
// ready: one failure may be a power cut, three are the system's fault.
const DefaultTries = 3

// Other returns the slot that is not slot.
func Other(slot string) string {
	if slot == SlotA {
		return SlotB
	}
	return SlotA
}

// Entry is one slot's file on the ESP.
type Entry struct {
	Slot string
	File string // the name in the slots directory
	// Counting is true while the entry is being tried (its name carries a
	// boot counter); TriesLeft and TriesDone are the counter's halves.
	Counting             bool
	TriesLeft, TriesDone int
}

// Bad reports an entry whose tries ran out: systemd-boot boots it only
// when nothing else is left.
func (e Entry) Bad() bool { return e.Counting && e.TriesLeft == 0 }

// ParseEntry reads a slot file name; ok is false for any other file.
func ParseEntry(name string) (e Entry, ok bool) {
	base, found := strings.CutSuffix(name, ".efi")
	if !found {
		return Entry{}, false
	}
	base, counter, counting := strings.Cut(base, "+")
	slot, found := strings.CutPrefix(base, "piot-")
	if !found || (slot != SlotA && slot != SlotB) {
		return Entry{}, false
	}
	e = Entry{Slot: slot, File: name, Counting: counting}
	if counting {
		left, done, hasDone := strings.Cut(counter, "-")
		var err error
		if e.TriesLeft, err = strconv.Atoi(left); err != nil || e.TriesLeft < 0 {
			return Entry{}, false
		}
		if hasDone {
			if e.TriesDone, err = strconv.Atoi(done); err != nil || e.TriesDone < 0 {
				return Entry{}, false
			}
		}
	}
	return e, true
}

// Slots is the slots directory on the mounted ESP (EFI/Linux).
type Slots struct {
	Dir string
}

// Entries returns the slots present, by slot name.
func (s Slots) Entries() (map[string]Entry, error) {
	des, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("update: slots: %w", err)
	}
	found := map[string]Entry{}
	for _, de := range des {
		e, ok := ParseEntry(de.Name())
		if !ok {
			continue
		}
		if prev, dup := found[e.Slot]; dup {
			return nil, fmt.Errorf("update: slot %s has two files, %s and %s", e.Slot, prev.File, e.File)
		}
		found[e.Slot] = e
	}
	return found, nil
}

// Partial is where an install writes a slot's image until it is complete.
// systemd-boot loads only *.efi, so a half-written slot is never booted.
func (s Slots) Partial(slot string) string {
	return filepath.Join(s.Dir, "piot-"+slot+".partial")
}

// Commit makes the complete image in Partial(slot) the slot's entry, to be
// tried tries times: the old entry of that slot is removed first (it is the
// inactive one), then the image is renamed into place, and the directory
// synced, so that after a power cut the slot is either absent or whole.
func (s Slots) Commit(slot string, tries int) (Entry, error) {
	if tries < 1 {
		return Entry{}, fmt.Errorf("update: %d tries", tries)
	}
	entries, err := s.Entries()
	if err != nil {
		return Entry{}, err
	}
	if old, ok := entries[slot]; ok {
		if err := os.Remove(filepath.Join(s.Dir, old.File)); err != nil {
			return Entry{}, fmt.Errorf("update: removing the old slot %s: %w", slot, err)
		}
	}
	e := Entry{Slot: slot, File: fmt.Sprintf("piot-%s+%d.efi", slot, tries), Counting: true, TriesLeft: tries}
	if err := renameDurably(s.Dir, filepath.Base(s.Partial(slot)), e.File); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// MarkGood ends the trial of the slot: its entry loses the boot counter,
// so systemd-boot stops counting and never falls back from it.
func (s Slots) MarkGood(slot string) error {
	entries, err := s.Entries()
	if err != nil {
		return err
	}
	e, ok := entries[slot]
	if !ok {
		return fmt.Errorf("update: slot %s has no entry", slot)
	}
	if !e.Counting {
		return nil
	}
	if err := renameDurably(s.Dir, e.File, "piot-"+slot+".efi"); err != nil {
		return fmt.Errorf("update: marking slot %s good: %w", slot, err)
	}
	return nil
}

// renameDurably renames a file in dir so that a power cut after it
// returns finds the file whole under its new name. On FAT a rename writes
// a new directory entry with size 0 and no clusters, and the file's real
// size and first cluster reach it only when the file itself is written
// back: syncing the directory is not enough (seen in the QEMU update test:
// a slot of 0 bytes after a power cut), the renamed file is synced too.
func renameDurably(dir, from, to string) error {
	if err := os.Rename(filepath.Join(dir, from), filepath.Join(dir, to)); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, to), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fileutil.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("update: syncing %s: %w", to, err)
	}
	return nil
}

// LoaderEntrySelected is the EFI variable in which systemd-boot names the
// entry it booted, under efivarfs.
const LoaderEntrySelected = "LoaderEntrySelected-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"

// BootedSlot returns the slot systemd-boot booted, read from its
// LoaderEntrySelected variable in the efivarfs directory. The entry id is
// the file name without the boot counter. ok is false when the system was
// not started by systemd-boot (a direct kernel boot, another loader).
func BootedSlot(efivars string) (slot string, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(efivars, LoaderEntrySelected))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("update: %w", err)
	}
	id, err := efiString(data)
	if err != nil {
		return "", false, err
	}
	e, ok := ParseEntry(strings.ToLower(id))
	if !ok {
		return "", false, nil
	}
	return e.Slot, true, nil
}

// efiString decodes an efivarfs file holding a string: four bytes of
// attributes, then NUL-terminated UTF-16LE.
func efiString(data []byte) (string, error) {
	if len(data) < 4 || len(data)%2 != 0 {
		return "", fmt.Errorf("update: EFI string variable of %d bytes", len(data))
	}
	data = data[4:]
	u := make([]uint16, 0, len(data)/2)
	for i := 0; i+1 < len(data); i += 2 {
		c := uint16(data[i]) | uint16(data[i+1])<<8
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u)), nil
}

// SlotVersion returns the version a slot's image carries: VERSION_ID of
// the os-release the unified kernel image holds in its .osrel section
// (IMAGE_VERSION is for systemd-boot's ordering, see above).
func SlotVersion(path string) (string, error) {
	f, err := pe.Open(path)
	if err != nil {
		return "", fmt.Errorf("update: slot image %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".osrel")
	if sec == nil {
		return "", fmt.Errorf("update: slot image %s has no .osrel section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return "", fmt.Errorf("update: slot image %s: %w", path, err)
	}
	// The section is padded to the file alignment with NULs.
	data, _, _ = bytes.Cut(data, []byte{0})
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VERSION_ID="); ok {
			return strings.Trim(v, `"`), nil
		}
	}
	return "", fmt.Errorf("update: slot image %s names no VERSION_ID", path)
}
