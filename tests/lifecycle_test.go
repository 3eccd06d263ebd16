package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Everything created through the API is still there after a restart on
// the same data directory, including the first-start secrets.
func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	a := startAppliance(t, startOpts{dataDir: dir})
	pw := a.adminPassword()
	tok := a.login("admin@piot.local", pw)
	_, data, code := a.gql(tok, `mutation { createOrg(name: "farm", description: "north") { id } }`, nil)
	if code != "" {
		t.Fatalf("createOrg: %s", code)
	}
	orgID := data["createOrg"].(map[string]any)["id"].(string)
	_, _, code = a.gql(tok, `mutation { createThing(name: "T1", type: "sensor") { id } }`, nil)
	if code != "" {
		t.Fatalf("createThing: %s", code)
	}
	jwtKey, _ := os.ReadFile(filepath.Join(dir, "jwt.key"))
	a.stop()

	b := startAppliance(t, startOpts{dataDir: dir})
	if got := b.adminPassword(); got != pw {
		t.Fatal("admin password file changed on restart")
	}
	if k, _ := os.ReadFile(filepath.Join(dir, "jwt.key")); string(k) != string(jwtKey) {
		t.Fatal("JWT key changed on restart")
	}
	// The old token is still valid: same key.
	_, data, code = b.gql(tok, `query($id: ID!) { org(id: $id) { name description } things(all: true) { name type } }`, map[string]any{"id": orgID})
	if code != "" {
		t.Fatalf("after restart: %s", code)
	}
	if data["org"].(map[string]any)["name"] != "farm" {
		t.Fatalf("org lost: %v", data)
	}
	things := data["things"].([]any)
	if len(things) != 1 || things[0].(map[string]any)["name"] != "T1" {
		t.Fatalf("things lost: %v", data)
	}
	if strings.Count(b.out.String(), "generated password") != 0 {
		t.Fatal("second start provisioned the admin again")
	}
	for _, f := range []string{"jwt.key", "admin-password"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", f, st.Mode().Perm(), err)
		}
	}
}

// runFails starts piot with args and expects a quick non-zero exit with a
// one-line reason on stderr containing want; it returns that line.
func runFails(t *testing.T, want string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(piotBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("piot %v exited 0", args)
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("piot %v did not exit", args)
	}
	var last string
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if strings.HasPrefix(l, "piot:") {
			last = l
		}
	}
	if last == "" || !strings.Contains(last, want) {
		t.Fatalf("want a 'piot: ...%s...' line, stderr:\n%s", want, stderr.String())
	}
	return last
}

func TestStartupRefusesBadSetup(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	badYAML := filepath.Join(t.TempDir(), "piot.yaml")
	if err := os.WriteFile(badYAML, []byte("jwt-ttl: soon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		want string
		env  []string
		args []string
	}{
		{"wrong store uri", "store", nil, []string{"--store-uri", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500", "--store-timeout", "2s"}},
		{"store uri scheme", "store-uri", nil, []string{"--store-uri", "http://x"}},
		{"data dir below a file", "data directory", nil, []string{"--data-dir", filepath.Join(file, "sub")}},
		{"bad env value", "PIOT_JWT_TTL", []string{"PIOT_JWT_TTL=later"}, nil},
		{"bad flag value", "log-level", nil, []string{"--log-level", "chatty"}},
		{"bad yaml value", "jwt-ttl", nil, []string{"--config", badYAML}},
		{"port in use", "listen", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"run", "--data-dir", t.TempDir(), "--http-addr", freeAddr(t),
				"--mqtt-addr", freeAddr(t), "--mqtts-addr", freeAddr(t), "--mqtt-ws-addr", freeAddr(t), "--ssh-addr", freeAddr(t)}, tc.args...)
			if tc.name == "port in use" {
				a := startAppliance(t, startOpts{})
				args = []string{"run", "--data-dir", t.TempDir(), "--http-addr", a.addr,
					"--mqtt-addr", freeAddr(t), "--mqtts-addr", freeAddr(t), "--mqtt-ws-addr", freeAddr(t), "--ssh-addr", freeAddr(t)}
			}
			runFails(t, tc.want, tc.env, args...)
		})
	}
}

func TestVersionAndHelp(t *testing.T) {
	out, err := exec.Command(piotBin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "piot ") {
		t.Fatalf("version: %v %s", err, out)
	}
	out, err = exec.Command(piotBin, "run", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("run --help: %v", err)
	}
	for _, want := range []string{"--data-dir", "PIOT_DATA_DIR", "--http-addr", "PIOT_HTTP_ADDR", "--store-uri", "PIOT_STORE_URI", "--log-level", "PIOT_LOG_LEVEL", "--jwt-ttl", "PIOT_JWT_TTL"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("run --help lacks %s", want)
		}
	}
}
