// Command mkimage builds the parts of the appliance image that Debian's
// tools cannot build without root: the initramfs (a cpio archive holding
// piot as /init, the kernel modules it loads and the few helper programs
// it runs), the unified kernel images (UKIs) of the system slots and the
// signed update bundles that carry them (appliance/update).
// image/build.sh drives it; see image/README.md.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: mkimage initramfs|uki|vmlinux|keys|bundle [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "initramfs":
		err = initramfsCmd(os.Args[2:])
	case "uki":
		err = ukiCmd(os.Args[2:])
	case "keys":
		err = keysCmd(os.Args[2:])
	case "bundle":
		err = bundleCmd(os.Args[2:])
	case "vmlinux":
		if len(os.Args) != 4 {
			err = fmt.Errorf("usage: mkimage vmlinux <bzImage> <out>")
		} else {
			err = extractVmlinux(os.Args[2], os.Args[3])
		}
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func initramfsCmd(args []string) error {
	fs := flag.NewFlagSet("initramfs", flag.ExitOnError)
	var o initramfsOptions
	fs.StringVar(&o.KernelRoot, "kernel-root", "", "unpacked kernel package (holds lib/modules/<version>)")
	fs.StringVar(&o.Piot, "piot", "", "the static piot binary, installed as /init")
	fs.StringVar(&o.Overlay, "overlay", "", "root filesystem overlay shared with buildroot/ (image/rootfs)")
	fs.StringVar(&o.Modules, "modules", "", "file listing the kernel modules to load at boot, one name per line")
	fs.StringVar(&o.Programs, "programs", "", "comma-separated host programs to bundle with their shared libraries")
	fs.StringVar(&o.Version, "version", "dev", "appliance version, written to /etc/piot/version")
	fs.StringVar(&o.Out, "o", "", "output file (zstd-compressed cpio)")
	_ = fs.Parse(args)
	if o.KernelRoot == "" || o.Piot == "" || o.Out == "" {
		return fmt.Errorf("initramfs: -kernel-root, -piot and -o are required")
	}
	return buildInitramfs(o)
}

func ukiCmd(args []string) error {
	fs := flag.NewFlagSet("uki", flag.ExitOnError)
	var o ukiOptions
	fs.StringVar(&o.Stub, "stub", "/usr/lib/systemd/boot/efi/linuxx64.efi.stub", "systemd EFI stub")
	fs.StringVar(&o.Kernel, "kernel", "", "kernel image (bzImage)")
	fs.StringVar(&o.Initrd, "initrd", "", "initramfs")
	fs.StringVar(&o.Cmdline, "cmdline", "", "kernel command line")
	fs.StringVar(&o.OSRelease, "os-release", "", "os-release file (names the entry in the boot menu)")
	fs.StringVar(&o.Out, "o", "", "output EFI binary")
	_ = fs.Parse(args)
	if o.Kernel == "" || o.Initrd == "" || o.Out == "" || o.OSRelease == "" {
		return fmt.Errorf("uki: -kernel, -initrd, -os-release and -o are required")
	}
	return buildUKI(o)
}
