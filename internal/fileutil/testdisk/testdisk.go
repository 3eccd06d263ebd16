// Package testdisk gives tests a small file system of their own to fill
// up: a tmpfs, mounted for the test and unmounted after it.
package testdisk

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Mount mounts a tmpfs of size bytes on a fresh directory. Where mounting
// is not permitted (it needs root or CAP_SYS_ADMIN) the test is skipped,
// or fails when PIOT_REQUIRE_MOSQUITTO is set, as `make test` does, so
// that CI cannot pass without running it.
func Mount(t testing.TB, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs to fill up (needs root or CAP_SYS_ADMIN): %v %s", err, out)
		if os.Getenv("PIOT_REQUIRE_MOSQUITTO") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// Fill writes path until the file system has no space left; removing the
// file gives the space back.
func Fill(t testing.TB, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			return
		}
	}
}
