package initd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The image's data partition is 1 GiB so that the image stays small; a
// USB stick or SSD it is written to is larger. At the first boot, before
// it is formatted, the data partition, when it is the disk's last, grows to
// the end of the disk: the GPT is rewritten (backup header and table moved
// to the new end) and the kernel told the new size.

// growMin is the least growth worth rewriting the partition table for.
const growMin = 16 << 20

// gptAlign keeps the partition's end on a 1 MiB boundary.
const gptAlign = 1 << 20

var errNotGPT = errors.New("no GPT")

// gptGrowLast grows partition pno (1-based) of the GPT disk image or
// device f to the end of the disk, if it is the last partition and the
// disk has grown by at least growMin. It returns the partition's new
// first and last sector (of sectorSize bytes), and whether it changed.
func gptGrowLast(f *os.File, diskBytes int64, sectorSize int64, pno int) (first, last uint64, changed bool, err error) {
	ss := sectorSize
	hdr := make([]byte, ss)
	if _, err := f.ReadAt(hdr, ss); err != nil {
		return 0, 0, false, err
	}
	if string(hdr[:8]) != "EFI PART" {
		return 0, 0, false, errNotGPT
	}
	hsize := binary.LittleEndian.Uint32(hdr[12:])
	if hsize < 92 || int64(hsize) > ss {
		return 0, 0, false, fmt.Errorf("GPT header size %d", hsize)
	}
	sum := binary.LittleEndian.Uint32(hdr[16:])
	binary.LittleEndian.PutUint32(hdr[16:], 0)
	if crc32.ChecksumIEEE(hdr[:hsize]) != sum {
		return 0, 0, false, errors.New("GPT header checksum mismatch")
	}
	entLBA := binary.LittleEndian.Uint64(hdr[72:])
	n := binary.LittleEndian.Uint32(hdr[80:])
	esz := binary.LittleEndian.Uint32(hdr[84:])
	if esz < 128 || n == 0 || n > 1024 || pno < 1 || pno > int(n) {
		return 0, 0, false, fmt.Errorf("GPT table of %d entries of %d bytes", n, esz)
	}
	ents := make([]byte, int64(n)*int64(esz))
	if _, err := f.ReadAt(ents, int64(entLBA)*ss); err != nil {
		return 0, 0, false, err
	}
	if crc32.ChecksumIEEE(ents) != binary.LittleEndian.Uint32(hdr[88:]) {
		return 0, 0, false, errors.New("GPT table checksum mismatch")
	}
	entry := func(i int) []byte { return ents[i*int(esz) : (i+1)*int(esz)] }
	ours := entry(pno - 1)
	first = binary.LittleEndian.Uint64(ours[32:])
	last = binary.LittleEndian.Uint64(ours[40:])
	for i := 0; i < int(n); i++ {
		e := entry(i)
		if i != pno-1 && !allZero(e[:16]) && binary.LittleEndian.Uint64(e[32:]) > last {
			return first, last, false, nil // not the last partition: leave it
		}
	}
	sectors := uint64(diskBytes / ss)
	tableSectors := (uint64(len(ents)) + uint64(ss) - 1) / uint64(ss)
	backupLBA := sectors - 1
	lastUsable := backupLBA - tableSectors - 1
	align := uint64(gptAlign / ss)
	newLast := (lastUsable+1)/align*align - 1
	if newLast <= last || (newLast-last)*uint64(ss) < growMin {
		return first, last, false, nil
	}
	binary.LittleEndian.PutUint64(ours[40:], newLast)
	entCRC := crc32.ChecksumIEEE(ents)

	header := func(my, alt, table uint64) []byte {
		h := bytes.Clone(hdr)
		binary.LittleEndian.PutUint64(h[24:], my)
		binary.LittleEndian.PutUint64(h[32:], alt)
		binary.LittleEndian.PutUint64(h[48:], lastUsable)
		binary.LittleEndian.PutUint64(h[72:], table)
		binary.LittleEndian.PutUint32(h[88:], entCRC)
		binary.LittleEndian.PutUint32(h[16:], 0)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:hsize]))
		return h
	}
	// The new backup first: until the primary is rewritten, the old
	// primary stays valid, and after, both are.
	backupTable := backupLBA - tableSectors
	if _, err := f.WriteAt(ents, int64(backupTable)*ss); err != nil {
		return 0, 0, false, err
	}
	if _, err := f.WriteAt(header(backupLBA, 1, backupTable), int64(backupLBA)*ss); err != nil {
		return 0, 0, false, err
	}
	if err := f.Sync(); err != nil {
		return 0, 0, false, err
	}
	if _, err := f.WriteAt(ents, int64(entLBA)*ss); err != nil {
		return 0, 0, false, err
	}
	if _, err := f.WriteAt(header(1, backupLBA, entLBA), ss); err != nil {
		return 0, 0, false, err
	}
	// The protective MBR covers the whole disk.
	mbr := make([]byte, 512)
	if _, err := f.ReadAt(mbr, 0); err == nil && mbr[510] == 0x55 && mbr[511] == 0xAA && mbr[446+4] == 0xEE {
		size := sectors - 1
		if size > 0xFFFFFFFF {
			size = 0xFFFFFFFF
		}
		binary.LittleEndian.PutUint32(mbr[446+12:], uint32(size))
		if _, err := f.WriteAt(mbr, 0); err != nil {
			return 0, 0, false, err
		}
	}
	return first, newLast, true, f.Sync()
}

func allZero(b []byte) bool { return len(bytes.Trim(b, "\x00")) == 0 }

// growDataPartition grows dev (a partition such as /dev/vda2) to the end
// of its disk; whole disks and partitions that are not last are left.
func growDataPartition(dev string) (bool, error) {
	name := filepath.Base(dev)
	sys := "/sys/class/block/" + name
	pnoRaw, err := os.ReadFile(sys + "/partition")
	if err != nil {
		return false, nil // a whole disk
	}
	pno, err := strconv.Atoi(strings.TrimSpace(string(pnoRaw)))
	if err != nil {
		return false, err
	}
	parentPath, err := filepath.EvalSymlinks(sys + "/..")
	if err != nil {
		return false, err
	}
	disk := "/dev/" + filepath.Base(parentPath)
	ss := int64(512)
	if b, err := os.ReadFile(parentPath + "/queue/logical_block_size"); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && v > 0 {
			ss = int64(v)
		}
	}
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	size, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKGETSIZE64)
	if err != nil {
		return false, fmt.Errorf("size of %s: %w", disk, err)
	}
	first, last, changed, err := gptGrowLast(f, int64(size), ss, pno)
	if err != nil || !changed {
		return false, err
	}
	// Tell the kernel: the disk is in use (the ESP is not mounted, but
	// this partition's device is open), so it will not reread the table.
	p := unix.BlkpgPartition{Start: int64(first) * ss, Length: int64(last-first+1) * ss, Pno: int32(pno)}
	arg := unix.BlkpgIoctlArg{Op: unix.BLKPG_RESIZE_PARTITION, Datalen: int32(unsafe.Sizeof(p)), Data: (*byte)(unsafe.Pointer(&p))}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), blkpg, uintptr(unsafe.Pointer(&arg))); e != 0 {
		return true, fmt.Errorf("tell the kernel the new size of %s: %w", dev, e)
	}
	return true, nil
}

// blkpg is BLKPG, _IO(0x12, 105).
const blkpg = 0x1269
