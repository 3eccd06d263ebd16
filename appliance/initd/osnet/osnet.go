// Package osnet configures the network of a Linux appliance whose PID 1
// is piot itself: there is no ip(8), no udhcpc and no resolvconf, so the
// interfaces are set up over netlink and the address comes from the
// package's own DHCPv4 client.
//
// The functions that touch the kernel need CAP_NET_ADMIN (and, on
// kernels before 5.7, CAP_NET_RAW for SO_BINDTODEVICE); EthernetInterfaces
// needs sysfs mounted at /sys. On other systems they return
// errors.ErrUnsupported.
package osnet

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Config is the IPv4 configuration of one interface.
type Config struct {
	// Address is the interface address with its prefix length,
	// e.g. 10.0.2.15/24.
	Address netip.Prefix
	// Gateway is the default router; the zero Addr means none.
	Gateway netip.Addr
	// DNS and Hostname are carried for the caller and not applied by
	// Apply: resolv.conf is a file (see WriteResolvConf) and the host
	// name is system-wide, not a property of the interface.
	DNS      []netip.Addr
	Hostname string
}

// Lease is an address granted by a DHCP server.
type Lease struct {
	Address netip.Prefix
	Gateway netip.Addr // zero when the server sent no router
	DNS     []netip.Addr
	Server  netip.Addr // the server identifier (option 54)

	// Duration is the lease time; T1 and T2 are when to renew and rebind,
	// all counted from Acquired. An infinite lease is 0xffffffff seconds.
	Duration, T1, T2 time.Duration
	// Acquired is when the REQUEST that got the lease was sent. It is
	// taken from time.Now and so keeps the monotonic reading: lease
	// deadlines computed from it survive the clock being stepped by SNTP,
	// which on an appliance without RTC happens right after boot.
	Acquired time.Time
}

// Config returns the interface configuration the lease grants.
func (l Lease) Config() Config {
	return Config{Address: l.Address, Gateway: l.Gateway, DNS: slices.Clone(l.DNS)}
}

// Expiry is when the lease ends unless renewed.
func (l Lease) Expiry() time.Time { return l.Acquired.Add(l.Duration) }

// sameConfig reports whether two leases configure the host alike, which
// decides whether a renewal is worth a log line.
func (l Lease) sameConfig(o Lease) bool {
	return l.Address == o.Address && l.Gateway == o.Gateway && l.Server == o.Server && slices.Equal(l.DNS, o.DNS)
}

// ErrNAK is returned by Renew when the server refuses the lease: the
// address must no longer be used.
var ErrNAK = errors.New("dhcp: server refused the lease (NAK)")

// WriteResolvConf writes a resolv.conf naming the given name servers.
// The file is replaced atomically, so a resolver reading it concurrently
// sees either the old or the new list, never a partial one.
func WriteResolvConf(path string, dns []netip.Addr) error {
	var b bytes.Buffer
	b.WriteString("# Written by piot init from DHCP; changes are overwritten.\n")
	for _, a := range dns {
		if !a.IsValid() {
			return fmt.Errorf("resolv.conf: invalid name server address")
		}
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("resolv.conf: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(b.Bytes()); err != nil {
		return fmt.Errorf("resolv.conf: %w", err)
	}
	// CreateTemp makes the file 0600; resolvers run as other users too.
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("resolv.conf: %w", err)
	}
	// Sync before rename: otherwise a power cut can leave an empty file
	// under the final name, and an appliance gets unplugged at any time.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("resolv.conf: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("resolv.conf: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("resolv.conf: %w", err)
	}
	ok = true
	// Best effort: the rename is already visible, and some file systems
	// (tmpfs) cannot sync a directory.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
