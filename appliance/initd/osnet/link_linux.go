package osnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/vishvananda/netlink"
)

const sysClassNet = "/sys/class/net"

// EthernetInterfaces returns the names of the non-loopback links backed by
// a device (those with /sys/class/net/<if>/device), sorted. Virtual links
// (bridges, veth, tunnels) have no device and are left out, so on a PC
// the result is the NICs that a cable can be plugged into.
func EthernetInterfaces() ([]string, error) {
	links, err := linkList()
	if err != nil {
		return nil, err
	}
	return physical(links, sysClassNet), nil
}

func physical(links []netlink.Link, sysfs string) []string {
	var names []string
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 {
			continue
		}
		if _, err := os.Stat(filepath.Join(sysfs, a.Name, "device")); err != nil {
			continue
		}
		names = append(names, a.Name)
	}
	slices.Sort(names)
	return names
}

// linkList retries a dump that a concurrent change interrupted: since
// netlink v1.3 such a dump returns ErrDumpInterrupted with possibly
// inconsistent results, and at boot links come and go (udev-less hotplug).
func linkList() ([]netlink.Link, error) {
	var err error
	for range 5 {
		var links []netlink.Link
		if links, err = netlink.LinkList(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			if err != nil {
				return nil, fmt.Errorf("list links: %w", err)
			}
			return links, nil
		}
	}
	return nil, fmt.Errorf("list links: %w", err)
}

func addrList(link netlink.Link) ([]netlink.Addr, error) {
	var err error
	for range 5 {
		var addrs []netlink.Addr
		if addrs, err = netlink.AddrList(link, netlink.FAMILY_V4); !errors.Is(err, netlink.ErrDumpInterrupted) {
			if err != nil {
				return nil, fmt.Errorf("list addresses of %s: %w", link.Attrs().Name, err)
			}
			return addrs, nil
		}
	}
	return nil, fmt.Errorf("list addresses of %s: %w", link.Attrs().Name, err)
}

// LoopbackUp brings lo up. The kernel adds 127.0.0.1/8 itself when lo
// comes up; it is added here too in case something removed it.
func LoopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(127, 0, 0, 1).To4(), Mask: net.CIDRMask(8, 32)}}
	if err := netlink.AddrReplace(lo, addr); err != nil {
		return fmt.Errorf("loopback address: %w", err)
	}
	return nil
}

// linkUp brings ifname up and returns it.
func linkUp(ifname string) (netlink.Link, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("interface %s up: %w", ifname, err)
	}
	return link, nil
}

// Apply configures ifname: link up, c.Address as its only IPv4 address,
// and, when c.Gateway is valid, the interface's default route via it.
// Applying the same Config again changes nothing.
//
// Each interface's default route gets the interface index as its metric,
// so that with DHCP on several NICs each replaces only its own default
// route (rather than all fighting over one at every renewal) and the
// first NIC's is preferred.
func Apply(ifname string, c Config) error {
	if !c.Address.IsValid() || !c.Address.Addr().Is4() {
		return fmt.Errorf("apply %s: address %v is not an IPv4 prefix", ifname, c.Address)
	}
	if c.Gateway.IsValid() && !c.Gateway.Is4() {
		return fmt.Errorf("apply %s: gateway %s is not IPv4", ifname, c.Gateway)
	}
	link, err := linkUp(ifname)
	if err != nil {
		return err
	}
	addrs, err := addrList(link)
	if err != nil {
		return err
	}
	want := toIPNet(c.Address)
	present := false
	for _, a := range addrs {
		if a.IPNet.String() == want.String() {
			present = true
			continue
		}
		// Old addresses go before the new one is added: deleting a
		// primary address also deletes the secondaries of its subnet
		// (unless promote_secondaries is set), which could take the new
		// address with it.
		if err := netlink.AddrDel(link, &a); err != nil {
			return fmt.Errorf("apply %s: remove %s: %w", ifname, a.IPNet, err)
		}
	}
	if !present {
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: want}); err != nil {
			return fmt.Errorf("apply %s: add %s: %w", ifname, c.Address, err)
		}
	}
	if !c.Gateway.IsValid() {
		return nil
	}
	gw := net.IP(c.Gateway.AsSlice())
	if !c.Address.Masked().Contains(c.Gateway) {
		// A gateway outside the subnet (as cloud DHCP servers hand out
		// with /32 addresses) needs a link route to it, or the kernel
		// refuses the default route as unreachable.
		host := &netlink.Route{
			LinkIndex: link.Attrs().Index,
			Scope:     netlink.SCOPE_LINK,
			Dst:       &net.IPNet{IP: gw, Mask: net.CIDRMask(32, 32)},
			Priority:  link.Attrs().Index,
		}
		if err := netlink.RouteReplace(host); err != nil {
			return fmt.Errorf("apply %s: route to gateway %s: %w", ifname, c.Gateway, err)
		}
	}
	def := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Gw:        gw,
		Priority:  link.Attrs().Index,
	}
	if err := netlink.RouteReplace(def); err != nil {
		return fmt.Errorf("apply %s: default route via %s: %w", ifname, c.Gateway, err)
	}
	return nil
}

// flushIPv4 removes every IPv4 address of ifname, and with them the
// routes through it.
func flushIPv4(ifname string) error {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifname, err)
	}
	addrs, err := addrList(link)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if err := netlink.AddrDel(link, &a); err != nil {
			return fmt.Errorf("remove %s from %s: %w", a.IPNet, ifname, err)
		}
	}
	return nil
}

func toIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
