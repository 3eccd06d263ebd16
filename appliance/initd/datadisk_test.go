package initd

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// probeDisk on real file systems made by Debian's mke2fs, the program the
// image bundles.
func TestProbeDisk(t *testing.T) {
	mkfs, err := exec.LookPath("mke2fs")
	if err != nil {
		mkfs = "/usr/sbin/mke2fs"
	}
	dir := t.TempDir()
	img := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.Truncate(p, 0); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(64 << 20); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return p
	}
	blank := img("blank")
	if st, err := probeDisk(blank); err != nil || st != diskBlank {
		t.Fatalf("zeros: %v %v, want blank", st, err)
	}
	ext4 := img("ext4")
	if out, err := exec.Command(mkfs, "-q", "-F", "-t", "ext4", "-L", DataLabel, ext4).CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v %s", err, out)
	}
	if st, err := probeDisk(ext4); err != nil || st != diskExt4 {
		t.Fatalf("ext4: %v %v", st, err)
	}
	// A destroyed superblock, even one overwritten with zeros, leaves the
	// group descriptors: never mistaken for a blank disk to format.
	for _, fill := range []byte{0x00, 0xA5} {
		f, err := os.OpenFile(ext4, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		junk := make([]byte, 1024)
		for i := range junk {
			junk[i] = fill
		}
		if _, err := f.WriteAt(junk, 1024); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if st, err := probeDisk(ext4); err != nil || st != diskUnknown {
			t.Fatalf("superblock overwritten with %#x: %v %v, want unknown", fill, st, err)
		}
	}
	// Something that is not ours either.
	other := img("other")
	if err := os.WriteFile(other, []byte("some other partition's content"), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, _ := probeDisk(other); st != diskUnknown {
		t.Fatalf("foreign data: %v, want unknown", st)
	}
}
