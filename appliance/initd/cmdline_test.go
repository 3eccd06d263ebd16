package initd

import "testing"

func TestParseBootArgs(t *testing.T) {
	b, err := parseBootArgs("quiet console=ttyS0 piot.hostname=barn piot.ip=10.0.2.20/24,10.0.2.2,10.0.2.3 piot.admin_key=ssh-ed25519+AAAAC3NzaC1lZDI1NTE5AAAAIMB5PXl8tYJM+IQpIh8+eo6HQcPXg+pylUqMCDSl9Jup+me@laptop+x piot.data=repair\n")
	if err != nil {
		t.Fatal(err)
	}
	if b.Hostname != "barn" || b.Data != "repair" {
		t.Fatalf("got %+v", b)
	}
	if want := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMB5PXl8tYJM+IQpIh8+eo6HQcPXg+pylUqMCDSl9Jup me@laptop x"; b.AdminKey != want {
		t.Fatalf("admin key %q, want %q", b.AdminKey, want)
	}
	ip, err := ipSettings(b.IP)
	if err != nil || ip["net-address"] != "10.0.2.20/24" || ip["net-gateway"] != "10.0.2.2" || ip["net-dns"] != "10.0.2.3" {
		t.Fatalf("ip settings %v %v", ip, err)
	}
	for _, bad := range []string{"piot.data=wipe", "piot.typo=1", "piot.admin_key=ssh-ed25519+AAAA+me"} {
		if _, err := parseBootArgs(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if _, err := ipSettings("10.0.2.20"); err == nil {
		t.Error("address without prefix accepted")
	}
}
