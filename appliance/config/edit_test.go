package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUpdateKeepsOtherKeysAndComments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "piot.yaml")
	orig := "# the appliance\nhttp-addr: \":80\" # plain HTTP\nhostname: piot\n"
	if err := os.WriteFile(path, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Update(path, map[string]string{"hostname": "barn-1", "timezone": "Europe/Prague"}); err != nil {
		t.Fatal(err)
	}
	c, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.OS.Hostname != "barn-1" || c.OS.Timezone != "Europe/Prague" || c.HTTP.Addr != ":80" {
		t.Fatalf("got hostname %q timezone %q http %q", c.OS.Hostname, c.OS.Timezone, c.HTTP.Addr)
	}
	raw, _ := os.ReadFile(path)
	for _, want := range []string{"# the appliance", "# plain HTTP"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("comment %q lost:\n%s", want, raw)
		}
	}
}

func TestUpdateRefusesBadValuesAndKeepsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "piot.yaml")
	orig := "hostname: piot\n"
	if err := os.WriteFile(path, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []map[string]string{
		{"hostname": "bad_name"},
		{"hostname": "-x"},
		{"network": "static"}, // no address
		{"network": "static", "net-address": "10.0.0.5"},
		{"net-dns": "not-an-ip"},
		{"timezone": "Mars/Olympus"},
		{"ntp-servers": "pool.ntp.org:99999"},
		{"no-such-key": "1"},
		{"trusted-proxies": "10.0.0.1,proxy.lan"},
		{"cors-origins": "localhost:5000"},
	} {
		if err := Update(path, tc); err == nil {
			t.Errorf("Update(%v) accepted", tc)
		}
	}
	raw, _ := os.ReadFile(path)
	if string(raw) != orig {
		t.Fatalf("file changed by refused updates: %q", raw)
	}
	if err := Update(path, map[string]string{"network": "static", "net-address": "10.0.2.20/24", "net-gateway": "10.0.2.2", "net-dns": "10.0.2.3"}); err != nil {
		t.Fatal(err)
	}
	c, err := LoadFile(path)
	if err != nil || c.OS.Network != "static" || len(c.OS.NetDNS) != 1 {
		t.Fatalf("static network not stored: %+v %v", c.OS, err)
	}
}
