package initd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DataLabel names the data partition (GPT partition name) and its ext4
// file system; a whole disk with this serial number (QEMU's
// -drive serial=) is taken as the data disk too.
const DataLabel = "piot-data"

// findDataDevice waits for the data partition to appear: disk drivers
// probe asynchronously after their modules load.
func findDataDevice(ctx context.Context, explicit string, k *kmods) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		if explicit != "" {
			if _, err := os.Stat(explicit); err == nil {
				return explicit, nil
			}
		} else if dev := scanDataDevice(); dev != "" {
			return dev, nil
		}
		k.loadForDevices() // a USB disk shows up after its controller
		select {
		case <-ctx.Done():
			what := "a partition named " + DataLabel
			if explicit != "" {
				what = explicit
			}
			return "", fmt.Errorf("no data disk: %s did not appear within 20 s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func scanDataDevice() string {
	// A disk whose serial says it is the data disk wins over the data
	// partition of the boot disk: that is what running with a separate
	// data disk means.
	disks, _ := filepath.Glob("/sys/block/*/serial")
	for _, s := range disks {
		if b, err := os.ReadFile(s); err == nil && strings.TrimSpace(string(b)) == DataLabel {
			return "/dev/" + filepath.Base(filepath.Dir(s))
		}
	}
	return scanPartition(DataLabel)
}

// diskState is what the first bytes of the data device say.
type diskState int

const (
	diskExt4    diskState = iota // an ext4 superblock
	diskBlank                    // all zeros: never formatted
	diskUnknown                  // neither: damaged, or someone else's
)

// blankCheckBytes of zeros mean a never-used partition. An ext4 file
// system whose superblock was destroyed still has its group descriptors
// and bitmaps in this range, so it is never mistaken for blank.
const blankCheckBytes = 4 << 20

func probeDisk(dev string) (diskState, error) {
	f, err := os.Open(dev)
	if err != nil {
		return diskUnknown, err
	}
	defer f.Close()
	buf := make([]byte, blankCheckBytes)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return diskUnknown, fmt.Errorf("read %s: %w", dev, err)
	}
	buf = buf[:n]
	// ext2/3/4 magic 0xEF53, little-endian, 56 bytes into the
	// superblock at 1024.
	if len(buf) >= 1024+58 && buf[1024+56] == 0x53 && buf[1024+57] == 0xEF {
		return diskExt4, nil
	}
	if len(bytes.Trim(buf, "\x00")) == 0 {
		return diskBlank, nil
	}
	return diskUnknown, nil
}

// formatData makes a fresh ext4 file system. Lazy inode table and
// journal initialisation finish in the background, so the first boot
// does not wait for zeroing the whole partition.
func formatData(p *procs, out *os.File, dev string) error {
	return p.run(out, "/usr/sbin/mke2fs", "-q", "-F", "-t", "ext4", "-L", DataLabel,
		"-E", "lazy_itable_init=1,lazy_journal_init=1", dev)
}

// repairData runs e2fsck in its fix-everything mode; it finds a backup
// superblock by itself when the primary one is destroyed. Exit status 1
// and 2 mean errors were corrected.
func repairData(p *procs, out *os.File, dev string) error {
	err := p.run(out, "/usr/sbin/e2fsck", "-f", "-y", dev)
	if err != nil && (strings.HasSuffix(err.Error(), "exit status 1") || strings.HasSuffix(err.Error(), "exit status 2")) {
		return nil
	}
	return err
}

func mountData(dev string) error {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	// The kernel replays the journal on mount: a power cut needs no
	// fsck. errors=remount-ro keeps a failing disk from corrupting more.
	if err := unix.Mount(dev, dataDir, "ext4", unix.MS_NOATIME|unix.MS_NODEV|unix.MS_NOSUID, "errors=remount-ro"); err != nil {
		return fmt.Errorf("mount %s on %s: %w", dev, dataDir, err)
	}
	return os.Chmod(dataDir, 0o700)
}
