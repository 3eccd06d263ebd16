package update

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
)

func TestParseEntry(t *testing.T) {
	for _, tc := range []struct {
		name string
		want Entry
		ok   bool
	}{
		{"piot-a.efi", Entry{Slot: "a", File: "piot-a.efi"}, true},
		{"piot-b+3.efi", Entry{Slot: "b", File: "piot-b+3.efi", Counting: true, TriesLeft: 3}, true},
		{"piot-b+2-1.efi", Entry{Slot: "b", File: "piot-b+2-1.efi", Counting: true, TriesLeft: 2, TriesDone: 1}, true},
		{"piot-a+0-3.efi", Entry{Slot: "a", File: "piot-a+0-3.efi", Counting: true, TriesDone: 3}, true},
		{"piot-b.partial", Entry{}, false},
		{"piot-c.efi", Entry{}, false},
		{"piot-a+x.efi", Entry{}, false},
		{"piot-a+1-.efi", Entry{}, false},
		{"other.efi", Entry{}, false},
	} {
		got, ok := ParseEntry(tc.name)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseEntry(%q) = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	if e, _ := ParseEntry("piot-a+0-3.efi"); !e.Bad() {
		t.Error("an entry with no tries left is not bad")
	}
	if e, _ := ParseEntry("piot-a+1-2.efi"); e.Bad() {
		t.Error("an entry with a try left is bad")
	}
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	slices.Sort(names)
	return names
}

// TestCommitAndMarkGood: an installed slot replaces the inactive slot's
// old entry and is tried; marking it good drops the counter, also after
// systemd-boot has counted a try.
func TestCommitAndMarkGood(t *testing.T) {
	s := Slots{Dir: t.TempDir()}
	for _, f := range []string{"piot-a.efi", "piot-b+0-3.efi", "piot-b.partial"} {
		if err := os.WriteFile(filepath.Join(s.Dir, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e, err := s.Commit(SlotB, DefaultTries)
	if err != nil {
		t.Fatal(err)
	}
	if e.File != "piot-b+3.efi" {
		t.Errorf("committed entry %s", e.File)
	}
	if got := files(t, s.Dir); !slices.Equal(got, []string{"piot-a.efi", "piot-b+3.efi"}) {
		t.Errorf("after commit: %v", got)
	}
	if data, _ := os.ReadFile(filepath.Join(s.Dir, "piot-b+3.efi")); string(data) != "piot-b.partial" {
		t.Errorf("committed entry holds %q", data)
	}
	// systemd-boot counts the boot.
	if err := os.Rename(filepath.Join(s.Dir, "piot-b+3.efi"), filepath.Join(s.Dir, "piot-b+2-1.efi")); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkGood(SlotB); err != nil {
		t.Fatal(err)
	}
	if got := files(t, s.Dir); !slices.Equal(got, []string{"piot-a.efi", "piot-b.efi"}) {
		t.Errorf("after marking good: %v", got)
	}
	if err := s.MarkGood(SlotB); err != nil {
		t.Errorf("marking a good slot good again: %v", err)
	}
	if _, err := s.Commit(SlotA, DefaultTries); err == nil {
		t.Error("committed slot a without a partial image")
	}
	if got := files(t, s.Dir); !slices.Contains(got, "piot-b.efi") {
		t.Errorf("a failed commit touched the other slot: %v", got)
	}
}

func TestEntriesRefusesTwoFilesForOneSlot(t *testing.T) {
	s := Slots{Dir: t.TempDir()}
	for _, f := range []string{"piot-a.efi", "piot-a+3.efi"} {
		if err := os.WriteFile(filepath.Join(s.Dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Entries(); err == nil {
		t.Error("two entries of slot a accepted")
	}
}

func efiVar(s string) []byte {
	b := []byte{7, 0, 0, 0} // attributes
	for _, c := range utf16.Encode([]rune(s + "\x00")) {
		b = append(b, byte(c), byte(c>>8))
	}
	return b
}

func TestBootedSlot(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := BootedSlot(dir); ok || err != nil {
		t.Errorf("without the variable: %v %v", ok, err)
	}
	for id, want := range map[string]string{"piot-b.efi": "b", "piot-a.efi": "a", "piot-a+2-1.efi": "a"} {
		if err := os.WriteFile(filepath.Join(dir, LoaderEntrySelected), efiVar(id), 0o644); err != nil {
			t.Fatal(err)
		}
		slot, ok, err := BootedSlot(dir)
		if err != nil || !ok || slot != want {
			t.Errorf("%s: slot %q %v %v; want %q", id, slot, ok, err, want)
		}
	}
}

// TestSlotVersion reads the version from the UKI the image build made.
func TestSlotVersion(t *testing.T) {
	uki := filepath.Join("..", "..", "image", "out", "piot-a.efi")
	want, err := os.ReadFile(filepath.Join("..", "..", "image", "out", "os-release"))
	if _, serr := os.Stat(uki); serr != nil || err != nil {
		t.Skip("no image built (make image)")
	}
	got, err := SlotVersion(uki)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Split(string(want), "\n"), "VERSION_ID="+got) {
		t.Errorf("version %q is not the os-release's:\n%s", got, want)
	}
	if _, err := SlotVersion(filepath.Join("update_test.go")); err == nil {
		t.Error("a Go file was read as a slot image")
	}
}
