package osnet

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestWriteResolvConf(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(path, []byte("nameserver 9.9.9.9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dns := []netip.Addr{netip.MustParseAddr("10.0.2.3"), netip.MustParseAddr("2001:db8::53"), netip.MustParseAddr("fe80::1%eth0")}
	if err := WriteResolvConf(path, dns); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Written by piot init from DHCP; changes are overwritten.\n" +
		"nameserver 10.0.2.3\nnameserver 2001:db8::53\nnameserver fe80::1%eth0\n"
	if string(got) != want {
		t.Errorf("resolv.conf =\n%s\nwant\n%s", got, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v; want 0644 for resolvers running as other users", fi.Mode(), err)
	}

	// A refused write leaves the old file and no temporary behind.
	if err := WriteResolvConf(path, []netip.Addr{{}}); err == nil {
		t.Error("invalid address accepted")
	}
	if again, _ := os.ReadFile(path); string(again) != want {
		t.Errorf("failed write changed the file: %q", again)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %v, want resolv.conf only", entries)
	}

	if err := WriteResolvConf(path, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "# Written by piot init from DHCP; changes are overwritten.\n" {
		t.Errorf("no servers: %q", got)
	}
	if err := WriteResolvConf(filepath.Join(dir, "missing", "resolv.conf"), dns); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestLeaseConfig(t *testing.T) {
	l := Lease{
		Address: netip.MustParsePrefix("10.0.2.15/24"), Gateway: netip.MustParseAddr("10.0.2.2"),
		DNS: []netip.Addr{netip.MustParseAddr("10.0.2.3")}, Duration: time.Hour, Acquired: time.Unix(1000, 0),
	}
	c := l.Config()
	if c.Address != l.Address || c.Gateway != l.Gateway || !slices.Equal(c.DNS, l.DNS) || c.Hostname != "" {
		t.Errorf("Config() = %+v", c)
	}
	c.DNS[0] = netip.Addr{}
	if !l.DNS[0].IsValid() {
		t.Error("Config shares the lease's DNS slice")
	}
	if !l.Expiry().Equal(time.Unix(4600, 0)) {
		t.Errorf("Expiry = %v", l.Expiry())
	}
}
