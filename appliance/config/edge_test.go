package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func loadEdge(t *testing.T, args, env []string) (Edge, error) {
	t.Helper()
	e := DefaultEdge()
	fs := pflag.NewFlagSet("adapter", pflag.ContinueOnError)
	e.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return e, err
	}
	return e, e.Load(fs, env)
}

// The edge adapter's options come from YAML, PIOT_ADAPTER_* and flags,
// in that order of precedence.
func TestEdgePrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "edge.yaml")
	yml := "uplink: mqtts://appliance:8883\norg: farm\nusername: farm-edge\nca: /etc/piot/ca.crt\nspool-max-age: 48h\nwindow: 8\n"
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := loadEdge(t, []string{"--config", file, "--window", "16"},
		[]string{"PIOT_ADAPTER_PASSWORD=secret", "PIOT_ADAPTER_WINDOW=4", "PIOT_ADAPTER_SPOOL_POLICY=reject-new"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Uplink != "mqtts://appliance:8883" || e.Org != "farm" || e.SpoolMaxAge != 48*time.Hour ||
		e.Password != "secret" || e.SpoolPolicy != "reject-new" || e.Window != 16 || e.MinInterval != time.Second {
		t.Fatalf("%+v", e)
	}
	broker, tls, err := e.UplinkBroker()
	if err != nil || broker != "ssl://appliance:8883" || !tls {
		t.Fatalf("uplink %q %v %v", broker, tls, err)
	}
}

func TestEdgeBadValuesAreRefused(t *testing.T) {
	ok := []string{"--uplink", "mqtt://127.0.0.1:1883", "--org", "o", "--username", "u", "--password", "p"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "uplink is required"},
		{[]string{"--uplink", "http://x:1", "--org", "o", "--username", "u", "--password", "p"}, "scheme"},
		{[]string{"--uplink", "mqtts://x:8883", "--org", "o", "--username", "u", "--password", "p"}, "ca is required"},
		{append(ok[:6:6], "--password", ""), "username and password"},
		{append(ok, "--spool-policy", "keep-all"), "spool-policy"},
		{append(ok, "--spool-max-bytes", "1000"), "spool-max-bytes"},
		{append(ok, "--aes-key", "short"), "aes-key"},
		{append(ok, "--window", "0"), "window"},
		{append(ok, "--listen", "nonsense"), "listen"},
	} {
		if _, err := loadEdge(t, c.args, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error about %s", c.args, err, c.want)
		}
	}
	if _, err := loadEdge(t, ok, nil); err != nil {
		t.Fatalf("valid options refused: %v", err)
	}
}
