// Package buildroot_test checks the Buildroot BR2_EXTERNAL tree without
// Buildroot, which cannot be fetched here: the Kconfig parses and defines
// what the defconfigs set, every file the tree refers to exists, the shell
// scripts pass bash -n and shellcheck, and the disk layouts match what the
// boot loaders and piot as PID 1 expect.
package buildroot_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// buildrootSymbols are the Buildroot symbols our Kconfig files refer to,
// declared by the check because Buildroot is not here. Each exists in
// Buildroot 2025.02 (package/go/Config.in.host, arch/Config.in,
// package/e2fsprogs/Config.in); a new reference is reported as an
// undefined symbol until it is added here.
var buildrootSymbols = []string{
	"BR2_PACKAGE_HOST_GO_TARGET_ARCH_SUPPORTS",
	"BR2_USE_MMU",
	"BR2_PACKAGE_E2FSPROGS",
}

// ourPrefix is the namespace of the symbols this tree defines.
const ourPrefix = "BR2_PACKAGE_PIOT"

// kconfigScript parses the top-level Kconfig given as argv[1], then loads
// each config fragment argv[2:] in turn, and prints as JSON the symbols
// defined in the external tree, their values after each fragment, and
// every warning (undefined symbols included, via KCONFIG_WARN_UNDEF).
const kconfigScript = `
import json, os, sys
import kconfiglib

ext = os.path.realpath(os.environ["BR2_EXTERNAL_PIOT_PATH"]) + os.sep
kconf = kconfiglib.Kconfig(sys.argv[1], warn_to_stderr=False, suppress_traceback=True)
kconf.warn_assign_undef = True

def ours(node):
    path = os.path.join(kconf.srctree, node.filename)
    return os.path.realpath(path).startswith(ext)

syms = [s for s in kconf.unique_defined_syms if any(ours(n) for n in s.nodes)]
out = {
    "defined": sorted(s.name for s in syms),
    "without_help": sorted(s.name for s in syms if not any(n.help for n in s.nodes)),
    "values": {},
}
for frag in sys.argv[2:]:
    kconf.load_config(frag)
    out["values"][frag] = {s.name: s.str_value for s in syms}
out["warnings"] = kconf.warnings
json.dump(out, sys.stdout)
`

func TestKconfig(t *testing.T) {
	python := requirePythonKconfiglib(t)
	tree := treeDir(t)
	dir := t.TempDir()

	var top strings.Builder
	top.WriteString("mainmenu \"PIOT BR2_EXTERNAL check\"\n\n")
	for _, s := range buildrootSymbols {
		fmt.Fprintf(&top, "config %s\n\tbool \"%s (Buildroot)\"\n\tdefault y\n\n", s, s)
	}
	// As Buildroot's generated .br2-external.in does.
	top.WriteString("menu \"External options\"\nsource \"$BR2_EXTERNAL_PIOT_PATH/Config.in\"\nendmenu\n")
	topPath := writeFile(t, dir, "Config.in", top.String())

	// One fragment per defconfig with only its lines about our symbols:
	// the Buildroot ones are not declared here.
	defconfigs := readDefconfigs(t)
	args := []string{"-c", kconfigScript, topPath}
	fragOf := map[string]string{}
	for _, name := range sortedKeys(defconfigs) {
		var frag strings.Builder
		for sym, val := range defconfigs[name] {
			if strings.HasPrefix(sym, ourPrefix) {
				fmt.Fprintf(&frag, "%s=%s\n", sym, val)
			}
		}
		fragOf[name] = writeFile(t, dir, name, frag.String())
		args = append(args, fragOf[name])
	}

	cmd := exec.Command(python, args...)
	cmd.Dir = dir
	// CONFIG_ is empty as in Buildroot: the symbols carry their BR2_ prefix.
	cmd.Env = append(os.Environ(), "BR2_EXTERNAL_PIOT_PATH="+tree, "KCONFIG_WARN_UNDEF=y", "CONFIG_=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("kconfiglib: %v\n%s", err, stderr.String())
	}
	var got struct {
		Defined     []string                     `json:"defined"`
		WithoutHelp []string                     `json:"without_help"`
		Values      map[string]map[string]string `json:"values"`
		Warnings    []string                     `json:"warnings"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("kconfiglib output: %v\n%s", err, raw)
	}
	t.Logf("symbols defined by buildroot/Config.in: %s", strings.Join(got.Defined, " "))

	for _, w := range got.Warnings {
		t.Errorf("kconfiglib: %s", w)
	}
	if !slices.Contains(got.Defined, ourPrefix) {
		t.Errorf("%s is not defined", ourPrefix)
	}
	for _, s := range got.Defined {
		if !strings.HasPrefix(s, ourPrefix) {
			t.Errorf("%s: the tree's symbols belong under %s", s, ourPrefix)
		}
	}
	for _, s := range got.WithoutHelp {
		t.Errorf("%s has no help text", s)
	}
	for _, name := range sortedKeys(defconfigs) {
		for sym, want := range defconfigs[name] {
			if !strings.HasPrefix(sym, ourPrefix) {
				continue
			}
			if !slices.Contains(got.Defined, sym) {
				t.Errorf("%s sets %s, which buildroot/Config.in does not define", name, sym)
				continue
			}
			// A value that does not stick means unmet dependencies.
			if v := got.Values[fragOf[name]][sym]; v != strings.Trim(want, `"`) {
				t.Errorf("%s sets %s=%s but Kconfig gives %q", name, sym, want, v)
			}
		}
	}
}

// externalRef matches a path under the tree as a defconfig, a .mk or a
// Config.in writes it.
var externalRef = regexp.MustCompile(`\$\(?BR2_EXTERNAL_PIOT_PATH\)?(/[\w./-]*)?`)

// boardRef matches a path relative to board/piot as the scripts write it;
// $flavour stands for each board flavour.
var boardRef = regexp.MustCompile(`\$\{?board_dir\}?/([\w./@${}-]+)`)

func TestReferencedFilesExist(t *testing.T) {
	tree := treeDir(t)
	checked := 0
	exists := func(where, ref, path string) {
		t.Helper()
		checked++
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%s refers to %s, which does not exist (%s)", where, ref, path)
		}
	}

	err := filepath.WalkDir(tree, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tree, path)
		for _, m := range externalRef.FindAllStringSubmatch(string(b), -1) {
			exists(rel, m[0], filepath.Join(tree, m[1]))
		}
		if strings.HasSuffix(path, ".sh") {
			for _, m := range boardRef.FindAllStringSubmatch(string(b), -1) {
				for _, p := range expandFlavour(t, m[1]) {
					if strings.Contains(p, "$") {
						t.Errorf("%s: cannot resolve %s", rel, m[0])
						continue
					}
					exists(rel, m[0], filepath.Join(tree, "board/piot", p))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("found no references to check")
	}
	t.Logf("%d references checked", checked)
}

func TestShellScripts(t *testing.T) {
	shellcheck := requireTool(t, "shellcheck", "shellcheck")
	scripts, err := filepath.Glob(filepath.Join(treeDir(t), "board/*/*.sh"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no shell scripts found: %v", err)
	}
	for _, s := range scripts {
		rel, _ := filepath.Rel(treeDir(t), s)
		// Buildroot runs post-build and post-image scripts directly.
		if st, err := os.Stat(s); err != nil || st.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable", rel)
		}
		for _, argv := range [][]string{{"bash", "-n", s}, {shellcheck, s}} {
			if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
				t.Errorf("%s %s: %v\n%s", filepath.Base(argv[0]), rel, err, out)
			}
		}
	}
}

// genimagePartition matches a partition of a genimage hdimage.
var genimagePartition = regexp.MustCompile(`(?m)^\s*partition\s+([\w.-]+)\s*\{`)

// TestDiskLayouts checks what the boot chain relies on: GPT partition
// names (piot finds piot-data by name, the kernel its root by
// PARTLABEL), the data partition last, and the boot loaders' slot wiring.
func TestDiskLayouts(t *testing.T) {
	tree := treeDir(t)
	for _, flavour := range flavours(t) {
		cfg := readFile(t, filepath.Join(tree, "board/piot/genimage-"+flavour+".cfg"))
		if !strings.Contains(cfg, `partition-table-type = "gpt"`) {
			t.Errorf("genimage-%s.cfg: want a GPT (partition names)", flavour)
		}
		var parts []string
		for _, m := range genimagePartition.FindAllStringSubmatch(cfg, -1) {
			parts = append(parts, m[1])
		}
		if len(parts) == 0 || parts[len(parts)-1] != "piot-data" || slices.Index(parts, "piot-data") != len(parts)-1 {
			t.Errorf("genimage-%s.cfg: partitions %v, want one piot-data, last", flavour, parts)
		}
		for _, p := range []string{"piot-root-a", "piot-root-b"} {
			if !slices.Contains(parts, p) {
				t.Errorf("genimage-%s.cfg: no partition %s", flavour, p)
			}
		}
		if flavour == "raspberrypi4" {
			checkAutoboot(t, parts)
		}
	}

	cmdline := readFile(t, filepath.Join(tree, "board/piot/rpi4/cmdline.txt"))
	if strings.Count(strings.TrimRight(cmdline, "\n"), "\n") != 0 {
		t.Errorf("rpi4/cmdline.txt must be one line: the firmware reads only the first")
	}
	for file, wants := range map[string][]string{
		"rpi4/cmdline.txt": {"root=PARTLABEL=piot-root-@SLOT@", "init=/usr/bin/piot", "ro"},
		"x86_64/grub.cfg":  {"root=PARTLABEL=piot-root-$slot", "init=/usr/bin/piot", "ro", "/EFI/Linux/piot-$slot.efi", "save_env piot_try"},
	} {
		text := readFile(t, filepath.Join(tree, "board/piot", file))
		for _, w := range wants {
			// A single word must be a whole word ("ro", not the ro of root=).
			found := slices.Contains(strings.Fields(text), w)
			if strings.Contains(w, " ") {
				found = strings.Contains(text, w)
			}
			if !found {
				t.Errorf("%s: missing %q", file, w)
			}
		}
	}
}

// checkAutoboot checks that autoboot.txt names the Pi's boot partitions
// by their numbers in the genimage layout: slot a normally, b on tryboot.
func checkAutoboot(t *testing.T, parts []string) {
	t.Helper()
	text := readFile(t, filepath.Join(treeDir(t), "board/piot/rpi4/autoboot.txt"))
	bootPart := map[string]string{}
	section := ""
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "[") {
			section = l
		} else if v, ok := strings.CutPrefix(l, "boot_partition="); ok {
			bootPart[section] = v
		}
	}
	if parts[0] != "piot-autoboot" {
		t.Errorf("the EEPROM reads autoboot.txt from partition 1, which is %s", parts[0])
	}
	for section, slot := range map[string]string{"[all]": "piot-boot-a", "[tryboot]": "piot-boot-b"} {
		if want := fmt.Sprint(slices.Index(parts, slot) + 1); bootPart[section] != want {
			t.Errorf("autoboot.txt %s boot_partition=%s, want %s (%s)", section, bootPart[section], want, slot)
		}
	}
	if !strings.Contains(text, "tryboot_a_b=1") {
		t.Errorf("autoboot.txt: want tryboot_a_b=1")
	}
}

// TestGoPackage checks piot.mk against the module it builds.
func TestGoPackage(t *testing.T) {
	tree := treeDir(t)
	repo := filepath.Dir(tree)
	vars := map[string]string{}
	for _, l := range strings.Split(readFile(t, filepath.Join(tree, "package/piot/piot.mk")), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && strings.HasPrefix(k, "PIOT_") {
			vars[strings.TrimRight(k, " :+?")] = strings.TrimSpace(v)
		}
	}
	site := strings.ReplaceAll(vars["PIOT_SITE"], "$(BR2_EXTERNAL_PIOT_PATH)", tree)
	if filepath.Clean(site) != repo || vars["PIOT_SITE_METHOD"] != "local" {
		t.Errorf("PIOT_SITE %s (method %q), want the repository %s built in place (local)", site, vars["PIOT_SITE_METHOD"], repo)
	}
	module := ""
	for _, l := range strings.Split(readFile(t, filepath.Join(repo, "go.mod")), "\n") {
		if m, ok := strings.CutPrefix(l, "module "); ok {
			module = strings.TrimSpace(m)
		}
	}
	if vars["PIOT_GOMOD"] != module {
		t.Errorf("PIOT_GOMOD %q, go.mod says %q", vars["PIOT_GOMOD"], module)
	}
	targets := strings.Fields(vars["PIOT_BUILD_TARGETS"])
	if len(targets) != 1 || vars["PIOT_BIN_NAME"] != "piot" {
		t.Errorf("want one build target installed as /usr/bin/piot, have %v as %q", targets, vars["PIOT_BIN_NAME"])
	}
	for _, target := range targets {
		if !isMainPackage(t, filepath.Join(repo, target)) {
			t.Errorf("PIOT_BUILD_TARGETS %s is not a main package", target)
		}
	}
	if !strings.Contains(vars["PIOT_GO_ENV"], "CGO_ENABLED=0") {
		t.Errorf("PIOT_GO_ENV %q: the appliance binary is static (CGO_ENABLED=0)", vars["PIOT_GO_ENV"])
	}
}

// isMainPackage reports whether dir holds a Go main package.
func isMainPackage(t *testing.T, dir string) bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		pf, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.PackageClauseOnly)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			return false
		}
		return pf.Name.Name == "main"
	}
	return false
}

// requirePythonKconfiglib finds a python3 with kconfiglib. Debian's
// package installs for the system interpreter, which a python3 earlier on
// PATH (pyenv, venv) does not see.
func requirePythonKconfiglib(t *testing.T) string {
	t.Helper()
	var err error
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		var p string
		if p, err = exec.LookPath(py); err == nil {
			if err = exec.Command(p, "-c", "import kconfiglib").Run(); err == nil {
				return p
			}
		}
	}
	missing(t, "python3-kconfiglib", err)
	return ""
}

// requireTool finds a program, or skips (fails under make test).
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, pkg, err)
	}
	return p
}

// missing fails when PIOT_REQUIRE_MOSQUITTO is set (make test installs
// the Debian packages the suite needs first), and skips otherwise.
func missing(t *testing.T, pkg string, err error) {
	t.Helper()
	if os.Getenv("PIOT_REQUIRE_MOSQUITTO") != "" {
		t.Fatalf("%s not installed (run tests/deps.sh): %v", pkg, err)
	}
	t.Skipf("%s not installed (run tests/deps.sh): %v", pkg, err)
}

// readDefconfigs maps each configs/*_defconfig to its assignments; "is
// not set" lines read as n.
func readDefconfigs(t *testing.T) map[string]map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(treeDir(t), "configs/*_defconfig"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no defconfigs: %v", err)
	}
	unset := regexp.MustCompile(`^# (BR2_\w+) is not set$`)
	all := map[string]map[string]string{}
	for _, p := range paths {
		syms := map[string]string{}
		sc := bufio.NewScanner(strings.NewReader(readFile(t, p)))
		for sc.Scan() {
			l := sc.Text()
			if m := unset.FindStringSubmatch(l); m != nil {
				syms[m[1]] = "n"
			} else if k, v, ok := strings.Cut(l, "="); ok && strings.HasPrefix(k, "BR2_") {
				syms[k] = v
			}
		}
		all[filepath.Base(p)] = syms
	}
	return all
}

// flavours are the board flavours the defconfigs pass to post-image.sh.
func flavours(t *testing.T) []string {
	t.Helper()
	var fs []string
	for name, syms := range readDefconfigs(t) {
		args := strings.Fields(strings.Trim(syms["BR2_ROOTFS_POST_SCRIPT_ARGS"], `"`))
		if len(args) == 0 {
			t.Errorf("%s: BR2_ROOTFS_POST_SCRIPT_ARGS names no board flavour", name)
			continue
		}
		fs = append(fs, args[0])
	}
	slices.Sort(fs)
	return fs
}

// expandFlavour expands $flavour in a script's path, once per flavour.
func expandFlavour(t *testing.T, p string) []string {
	t.Helper()
	if !strings.Contains(p, "$flavour") && !strings.Contains(p, "${flavour}") {
		return []string{p}
	}
	var out []string
	for _, f := range flavours(t) {
		out = append(out, strings.NewReplacer("${flavour}", f, "$flavour", f).Replace(p))
	}
	return out
}

// treeDir is the BR2_EXTERNAL tree: this package's directory.
func treeDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
