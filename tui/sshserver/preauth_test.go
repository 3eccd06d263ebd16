package sshserver

import (
	"net"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// dialFrom logs in from a given loopback source address.
func dialFrom(t *testing.T, s *Server, src string, signer gossh.Signer) (*gossh.Client, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", s.Addr())
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	c, chans, reqs, err := gossh.NewClientConn(conn, s.Addr(), &gossh.ClientConfig{
		User: "admin", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.FixedHostKey(s.HostKey()),
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return gossh.NewClient(c, chans, reqs), nil
}

// Idle connections that never log in, from a few addresses, cannot fill
// the console's slots: each address holds at most MaxPreAuthPerAddr of
// them, and an admin from another address logs in at once (issue 11).
func TestIdlePreAuthConnectionsCannotLockOut(t *testing.T) {
	ap := newAppliance(t)
	srv := ap.start(t, Config{})
	var idle []net.Conn
	t.Cleanup(func() {
		for _, c := range idle {
			c.Close()
		}
	})
	refused := 0
	for _, src := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		for range 10 {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			c, err := d.Dial("tcp", srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			idle = append(idle, c)
		}
	}
	// Connections over an address's share are closed at once.
	for _, c := range idle {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 256)
		for {
			if _, err := c.Read(buf); err != nil {
				if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
					refused++
				}
				break
			}
		}
	}
	if want := 40 - 4*MaxPreAuthPerAddr; refused != want {
		t.Fatalf("%d idle connections closed at once, want %d", refused, want)
	}
	c, err := dialFrom(t, srv, "127.0.0.6", ap.adminKey)
	if err != nil {
		t.Fatalf("admin locked out by idle connections: %v", err)
	}
	openTerminal(t, c, 80, 24, nil).waitFor("Dashboard")
	// Logged-in sessions do not count against their address's share.
	for i := range MaxPreAuthPerAddr + 2 {
		c, err := dialFrom(t, srv, "127.0.0.7", ap.adminKey)
		if err != nil {
			t.Fatalf("logged-in session %d from one address: %v", i+1, err)
		}
		openTerminal(t, c, 80, 24, nil).waitFor("Dashboard")
	}
}
