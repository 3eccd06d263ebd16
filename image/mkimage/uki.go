package main

import (
	"debug/pe"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

type ukiOptions struct {
	Stub, Kernel, Initrd, Cmdline, OSRelease, Out string
}

// buildUKI adds the kernel, initramfs, command line and os-release to the
// systemd stub as PE sections, the layout systemd-boot and the stub
// expect. Debian 12 has no ukify, so this is the objcopy recipe, with the
// section addresses computed from the stub instead of fixed, so that a
// larger stub or kernel cannot make sections overlap.
func buildUKI(o ukiOptions) error {
	f, err := pe.Open(o.Stub)
	if err != nil {
		return fmt.Errorf("stub: %w", err)
	}
	var end uint64
	for _, s := range f.Sections {
		if e := uint64(s.VirtualAddress) + uint64(s.VirtualSize); e > end {
			end = e
		}
	}
	var base uint64
	switch oh := f.OptionalHeader.(type) {
	case *pe.OptionalHeader64:
		base = oh.ImageBase
	case *pe.OptionalHeader32:
		base = uint64(oh.ImageBase)
	}
	f.Close()
	dir, err := os.MkdirTemp("", "uki")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cmdline := filepath.Join(dir, "cmdline")
	if err := os.WriteFile(cmdline, []byte(o.Cmdline+"\x00"), 0o644); err != nil {
		return err
	}
	sections := []struct{ name, path string }{
		{".osrel", o.OSRelease}, {".cmdline", cmdline}, {".linux", o.Kernel}, {".initrd", o.Initrd},
	}
	args := []string{}
	addr := align(end, 1<<16)
	for _, s := range sections {
		st, err := os.Stat(s.path)
		if err != nil {
			return err
		}
		args = append(args, "--add-section", s.name+"="+s.path,
			"--change-section-vma", fmt.Sprintf("%s=0x%x", s.name, base+addr))
		addr = align(addr+uint64(st.Size()), 1<<16)
	}
	args = append(args, o.Stub, o.Out)
	cmd := exec.Command("objcopy", args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("objcopy: %w", err)
	}
	return nil
}

func align(v, a uint64) uint64 { return (v + a - 1) / a * a }
