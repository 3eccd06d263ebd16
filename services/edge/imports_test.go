package edge

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// applianceTrees are the packages (relative to the module, with those
// below them) that the edge adapter must run without: it is built into
// the same binary but started at a site far from the appliance, so what
// it shares with the appliance (names, the protocols' checks, the relay's
// wire format) lives in leaf packages.
var applianceTrees = []string{
	"services/core",
	"services/store",
	"services/api",
	"services/broker",
	"services/ingest",
	"tui",
}

// goList runs `go list` here. `go test` puts its own GOROOT/bin first on
// PATH, so this is the go command that runs the test.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
		}
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// TestRunsWithoutTheAppliance: nothing the edge adapter depends on (its
// tests, which start a broker, do not count) is part of the appliance.
func TestRunsWithoutTheAppliance(t *testing.T) {
	mod := goList(t, "-m", "-f", "{{.Path}}")[0]
	imports := map[string][]string{}
	for _, line := range goList(t, "-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`, ".") {
		pkg, imps, _ := strings.Cut(line, " ")
		imports[pkg] = strings.Fields(imps)
	}
	var offenders []string
	for pkg := range imports {
		rel, ok := strings.CutPrefix(pkg, mod+"/")
		if !ok || !slices.ContainsFunc(applianceTrees, func(tree string) bool {
			return rel == tree || strings.HasPrefix(rel, tree+"/")
		}) {
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
		t.Errorf("the edge adapter depends on the appliance:\n  %s", strings.Join(offenders, "\n  "))
	}
}
