package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The README's quick start, run literally against a fresh appliance.
func TestReadmeQuickStart(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```sh quickstart\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README has no ```sh quickstart block")
	}
	script := string(m[1])

	a := startAppliance(t, startOpts{})
	// The quick start runs in the repository directory: ./bin/piot and ./data.
	work := t.TempDir()
	if err := os.Mkdir(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(piotBin, filepath.Join(work, "bin", "piot")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(a.dataDir, filepath.Join(work, "data")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "URL="+a.url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("quick start failed: %v\n%s\n--- appliance log ---\n%s", err, out, a.out)
	}
	s := string(out)
	for _, want := range []string{"farm", "North farm", "alice@farm.example is now a member of farm", `"email": "alice@farm.example"`} {
		if !strings.Contains(s, want) {
			t.Errorf("quick start output lacks %q:\n%s", want, s)
		}
	}
}
