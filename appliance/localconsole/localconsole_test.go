package localconsole

import "testing"

// The console dials what the appliance listens on; a wildcard listen
// address means this machine's loopback.
func TestDialAddr(t *testing.T) {
	for listen, want := range map[string]string{
		":2222":          "127.0.0.1:2222",
		"0.0.0.0:2022":   "127.0.0.1:2022",
		"[::]:2222":      "[::1]:2222",
		"127.0.0.1:2223": "127.0.0.1:2223",
		"10.1.2.3:22":    "10.1.2.3:22",
		"[::1]:2222":     "[::1]:2222",
	} {
		if got, err := DialAddr(listen); err != nil || got != want {
			t.Errorf("DialAddr(%q) = %q, %v; want %q", listen, got, err, want)
		}
	}
	for _, bad := range []string{"", "2222", "host"} {
		if _, err := DialAddr(bad); err == nil {
			t.Errorf("DialAddr(%q) accepted", bad)
		}
	}
}
