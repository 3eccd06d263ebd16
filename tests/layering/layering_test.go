package layering

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// mayImportStore are the packages (relative to the module) allowed to
// import services/store: core, which maps its documents to the domain
// types; history, a storage layer beside it; the store itself; the test
// fixture that opens one; and the composition root.
var mayImportStore = []string{
	"services/core",
	"services/core/coretest",
	"services/history",
	"services/store",
	"appliance",
	"appliance/cmd/piot",
}

// aboveCore are the trees that build on core; core and the store must not
// depend on any of them.
var aboveCore = []string{
	"appliance",
	"services/adapter",
	"services/api",
	"services/broker",
	"services/edge",
	"services/exporter",
	"services/history",
	"services/ingest",
	"services/monitor",
	"services/web",
	"tui",
}

// goList runs `go list` with the arguments and returns its output lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func modulePath(t *testing.T) string {
	t.Helper()
	return goList(t, "-m", "-f", "{{.Path}}")[0]
}

// under reports whether rel is tree or a package below it.
func under(rel, tree string) bool { return rel == tree || strings.HasPrefix(rel, tree+"/") }

// TestOnlyCoreAndTheRootImportTheStore: everything else sees core's
// types. Test files may open a store as a fixture, so only the packages'
// own imports count.
func TestOnlyCoreAndTheRootImportTheStore(t *testing.T) {
	mod := modulePath(t)
	store := mod + "/services/store"
	var offenders []string
	for _, line := range goList(t, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", mod+"/...") {
		pkg, imports, _ := strings.Cut(line, " ")
		rel := strings.TrimPrefix(pkg, mod+"/")
		if slices.Contains(strings.Fields(imports), store) && !slices.Contains(mayImportStore, rel) {
			offenders = append(offenders, rel)
		}
	}
	if len(offenders) > 0 {
		t.Errorf("these packages import services/store directly; use core's types and methods instead "+
			"(only %s may):\n  %s", strings.Join(mayImportStore, ", "), strings.Join(offenders, "\n  "))
	}
}

// TestCoreAndStoreDependOnNothingAbove: core and the store must not reach
// up, not even indirectly; the store must not reach core either.
func TestCoreAndStoreDependOnNothingAbove(t *testing.T) {
	mod := modulePath(t)
	for base, forbidden := range map[string][]string{
		"services/core":  aboveCore,
		"services/store": append([]string{"services/core"}, aboveCore...),
	} {
		// Every package base depends on, with the ones it imports.
		imports := map[string][]string{}
		for _, line := range goList(t, "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", mod+"/"+base) {
			pkg, imps, _ := strings.Cut(line, " ")
			imports[pkg] = strings.Fields(imps)
		}
		var offenders []string
		for pkg := range imports {
			rel, ok := strings.CutPrefix(pkg, mod+"/")
			if !ok || !slices.ContainsFunc(forbidden, func(tree string) bool { return under(rel, tree) }) {
				continue
			}
			var by []string
			for imp, imps := range imports {
				if slices.Contains(imps, pkg) {
					by = append(by, strings.TrimPrefix(imp, mod+"/"))
				}
			}
			slices.Sort(by)
			offenders = append(offenders, rel+" (imported by "+strings.Join(by, ", ")+")")
		}
		slices.Sort(offenders)
		if len(offenders) > 0 {
			t.Errorf("%s depends on packages above it:\n  %s", base, strings.Join(offenders, "\n  "))
		}
	}
}

// TestInternalIsGeneric: internal/ holds machinery both the appliance and
// the edge adapter build on, so it imports nothing of the program outside
// internal/ (else the edge adapter could reach core through it).
func TestInternalIsGeneric(t *testing.T) {
	mod := modulePath(t)
	var offenders []string
	for _, line := range goList(t, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", mod+"/internal/...") {
		pkg, imports, _ := strings.Cut(line, " ")
		for _, imp := range strings.Fields(imports) {
			rel, ok := strings.CutPrefix(imp, mod+"/")
			if ok && !under(rel, "internal") {
				offenders = append(offenders, strings.TrimPrefix(pkg, mod+"/")+" imports "+rel)
			}
		}
	}
	if len(offenders) > 0 {
		t.Errorf("internal/ must not import the rest of the program:\n  %s", strings.Join(offenders, "\n  "))
	}
}

// TestConsoleBackendTalksToCoreAndServices: the console's backend
// (tui/backend) builds on core, the services and the generic machinery
// under internal/, never on the composition root; its one exception is
// osctl, the client of piot init's control channel, a leaf of the
// standard library only.
func TestConsoleBackendTalksToCoreAndServices(t *testing.T) {
	mod := modulePath(t)
	allowed := []string{"services", "internal", "tui", "appliance/osctl"}
	var offenders []string
	for _, imp := range goList(t, "-f", "{{join .Imports \"\\n\"}}", mod+"/tui/backend") {
		rel, ok := strings.CutPrefix(imp, mod+"/")
		if ok && !slices.ContainsFunc(allowed, func(tree string) bool { return under(rel, tree) }) {
			offenders = append(offenders, rel)
		}
	}
	if len(offenders) > 0 {
		t.Errorf("tui/backend imports %s; it may build on %s only", strings.Join(offenders, ", "), strings.Join(allowed, ", "))
	}
}
