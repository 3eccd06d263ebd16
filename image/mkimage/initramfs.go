package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
)

type initramfsOptions struct {
	KernelRoot, Piot, Overlay, Modules, Programs, Version, Out string
}

// modulesIndex is where init finds the bundled modules: one line per
// module, dependencies before the modules that need them,
//
//	<name> <path> <dependency,...|-> <alias pattern>...
//
// init loads a module when a device's modalias matches one of its
// patterns, or always when it has none (file systems, checksums).
const modulesIndex = "etc/piot/modules"

// libDirs are searched for shared libraries of bundled programs.
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib"}

type archive struct {
	cpio *cpioWriter
	dirs map[string]bool
}

func (a *archive) mkdirAll(dir string) error {
	if dir == "." || dir == "/" || dir == "" || a.dirs[dir] {
		return nil
	}
	if err := a.mkdirAll(path.Dir(dir)); err != nil {
		return err
	}
	a.dirs[dir] = true
	return a.cpio.dir(dir)
}

func (a *archive) file(name string, perm uint32, data []byte) error {
	if err := a.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	return a.cpio.file(name, perm, data)
}

func buildInitramfs(o initramfsOptions) error {
	var buf bytes.Buffer
	a := &archive{cpio: &cpioWriter{w: &buf}, dirs: map[string]bool{}}
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "data", "boot", "etc/piot", "usr/bin", "usr/sbin"} {
		if err := a.mkdirAll(d); err != nil {
			return err
		}
	}
	// The kernel opens /dev/console for init's standard streams before
	// devtmpfs is mounted, so the node must be in the archive.
	if err := a.cpio.charDev("dev/console", 0o600, 5, 1); err != nil {
		return err
	}
	piot, err := os.ReadFile(o.Piot)
	if err != nil {
		return err
	}
	if err := a.file("init", 0o755, piot); err != nil {
		return err
	}
	if err := a.cpio.symlink("usr/bin/piot", "/init"); err != nil {
		return err
	}
	if err := a.file("etc/piot/version", 0o644, []byte(o.Version+"\n")); err != nil {
		return err
	}
	if o.Overlay != "" {
		if err := addOverlay(a, o.Overlay); err != nil {
			return err
		}
	}
	if o.Modules != "" {
		if err := addModules(a, o.KernelRoot, o.Modules); err != nil {
			return err
		}
	}
	if o.Programs != "" {
		if err := addPrograms(a, strings.Split(o.Programs, ",")); err != nil {
			return err
		}
	}
	if err := a.cpio.close(); err != nil {
		return err
	}
	out, err := os.Create(o.Out)
	if err != nil {
		return err
	}
	defer out.Close()
	// zstd: the kernel unpacks it several times faster than gzip or xz,
	// which counts under software emulation and on a Pi.
	enc, err := zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithWindowSize(1<<22))
	if err != nil {
		return err
	}
	if _, err := enc.Write(buf.Bytes()); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	return out.Close()
}

// addOverlay copies the shared root filesystem overlay, keeping symlinks.
func addOverlay(a *archive, root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			return a.mkdirAll(rel)
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := a.mkdirAll(path.Dir(rel)); err != nil {
				return err
			}
			return a.cpio.symlink(rel, target)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return a.file(rel, uint32(info.Mode().Perm()), data)
		}
	})
}

// addModules bundles the listed modules and everything they depend on,
// and writes the load order (dependencies first) for init. The Debian
// package has no modules.dep (depmod runs at install), so dependencies
// are read from each module's .modinfo section.
func addModules(a *archive, kernelRoot, listFile string) error {
	vers, err := filepath.Glob(filepath.Join(kernelRoot, "lib/modules/*"))
	if err != nil || len(vers) != 1 {
		return fmt.Errorf("want exactly one kernel version under %s/lib/modules, found %d", kernelRoot, len(vers))
	}
	modRoot := vers[0]
	byName := map[string]string{}
	err = filepath.WalkDir(filepath.Join(modRoot, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".ko") {
			byName[modName(filepath.Base(p))] = p
		}
		return err
	})
	if err != nil {
		return err
	}
	builtin := map[string]bool{}
	if raw, err := os.ReadFile(filepath.Join(modRoot, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(raw)) {
			builtin[modName(path.Base(l))] = true
		}
	}
	wanted, err := readList(listFile)
	if err != nil {
		return err
	}
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string) error
	visit = func(name string) error {
		name = modName(name)
		if builtin[name] || state[name] == 2 {
			return nil
		}
		if state[name] == 1 {
			return fmt.Errorf("module dependency cycle at %s", name)
		}
		p, ok := byName[name]
		if !ok {
			return fmt.Errorf("module %s is neither built in nor in %s", name, modRoot)
		}
		state[name] = 1
		deps, _, err := moduleInfo(p)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, name)
		return nil
	}
	for _, w := range wanted {
		if err := visit(w); err != nil {
			return err
		}
	}
	var list strings.Builder
	for _, name := range order {
		src := byName[name]
		rel, err := filepath.Rel(kernelRoot, src)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := a.file(filepath.ToSlash(rel), 0o644, data); err != nil {
			return err
		}
		deps, aliases, err := moduleInfo(src)
		if err != nil {
			return err
		}
		var needed []string
		for _, d := range deps {
			if d = modName(d); !builtin[d] {
				needed = append(needed, d)
			}
		}
		depList := strings.Join(needed, ",")
		if depList == "" {
			depList = "-"
		}
		fmt.Fprintf(&list, "%s /%s %s", name, filepath.ToSlash(rel), depList)
		for _, al := range aliases {
			// Device modaliases are "<bus>:<ids>"; the others name a
			// file system or an algorithm ("fs-ext4", "crc32c"), and
			// modules with only those load always.
			bus, ids, ok := strings.Cut(al, ":")
			if ok && bus != "" && ids != "" && bus != "devname" && !strings.ContainsAny(al, " \t") {
				fmt.Fprintf(&list, " %s", al)
			}
		}
		list.WriteString("\n")
	}
	return a.file(modulesIndex, 0o644, []byte(list.String()))
}

func modName(file string) string {
	return strings.ReplaceAll(strings.TrimSuffix(strings.TrimSuffix(file, ".ko"), ".ko.xz"), "-", "_")
}

// moduleInfo reads a module's dependencies and device alias patterns
// from its .modinfo section.
func moduleInfo(p string) (deps, aliases []string, err error) {
	f, err := elf.Open(p)
	if err != nil {
		return nil, nil, fmt.Errorf("module %s: %w", p, err)
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return nil, nil, nil
	}
	data, err := s.Data()
	if err != nil {
		return nil, nil, err
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			for _, d := range strings.Split(string(v), ",") {
				if d != "" {
					deps = append(deps, d)
				}
			}
		}
		if v, ok := bytes.CutPrefix(kv, []byte("alias=")); ok {
			aliases = append(aliases, string(v))
		}
	}
	sort.Strings(deps)
	return deps, aliases, nil
}

func readList(p string) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = strings.TrimSpace(l[:i])
		}
		if l != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// addPrograms bundles host programs (mke2fs, e2fsck) with their dynamic
// loader and shared libraries at the same paths.
func addPrograms(a *archive, progs []string) error {
	seen := map[string]bool{}
	var add func(string) error
	add = func(p string) error {
		if seen[p] {
			return nil
		}
		seen[p] = true
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := a.file(strings.TrimPrefix(p, "/"), 0o755, data); err != nil {
			return err
		}
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		defer f.Close()
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				interp := make([]byte, prog.Filesz)
				if _, err := prog.ReadAt(interp, 0); err != nil {
					return err
				}
				if err := add(strings.TrimRight(string(interp), "\x00")); err != nil {
					return err
				}
			}
		}
		libs, err := f.ImportedLibraries()
		if err != nil {
			return err
		}
		for _, lib := range libs {
			found := ""
			for _, d := range libDirs {
				if _, err := os.Stat(filepath.Join(d, lib)); err == nil {
					found = filepath.Join(d, lib)
					break
				}
			}
			if found == "" {
				return errors.New(p + ": library " + lib + " not found")
			}
			if err := add(found); err != nil {
				return err
			}
		}
		return nil
	}
	for _, p := range progs {
		if err := add(strings.TrimSpace(p)); err != nil {
			return err
		}
	}
	return nil
}
