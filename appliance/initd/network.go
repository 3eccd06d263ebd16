package initd

import (
	"context"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/piot-appliance/piot/appliance/config"
	"github.com/piot-appliance/piot/appliance/initd/osnet"
)

// network keeps the interfaces configured as the settings say: the
// static address on its interface, DHCP on every other Ethernet
// interface. apply replaces whatever ran before.
type network struct {
	log *slog.Logger

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
	addrs  map[string]ifaceAddr
	dns    map[string][]netip.Addr
}

type ifaceAddr struct{ iface, addr, how string }

func newNetwork(log *slog.Logger) *network {
	return &network{log: log, addrs: map[string]ifaceAddr{}, dns: map[string][]netip.Addr{}}
}

// interfaces waits briefly for network drivers to register their links.
func (n *network) interfaces() []string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		ifs, err := osnet.EthernetInterfaces()
		if err == nil && len(ifs) > 0 || time.Now().After(deadline) {
			return ifs
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *network) apply(o config.OS) {
	n.stop()
	if err := osnet.LoopbackUp(); err != nil {
		n.log.Error("loopback", "err", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.mu.Lock()
	n.cancel = cancel
	n.addrs, n.dns = map[string]ifaceAddr{}, map[string][]netip.Addr{}
	n.mu.Unlock()
	ifs := n.interfaces()
	if len(ifs) == 0 {
		n.log.Warn("no Ethernet interface found")
	}
	static := ""
	if o.Network == "static" {
		static = o.NetInterface
		if static == "" && len(ifs) > 0 {
			static = ifs[0]
		}
	}
	for _, ifname := range ifs {
		if ifname == static {
			continue
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			_ = osnet.Run(ctx, n.log, ifname, o.Hostname, func(l osnet.Lease) {
				n.set(ifname, ifaceAddr{ifname, l.Address.String(), "dhcp"}, l.DNS)
			})
		}()
	}
	if static != "" {
		c := osnet.Config{Address: netip.MustParsePrefix(o.NetAddress)}
		if o.NetGateway != "" {
			c.Gateway = netip.MustParseAddr(o.NetGateway)
		}
		for _, d := range o.NetDNS {
			c.DNS = append(c.DNS, netip.MustParseAddr(d))
		}
		if err := osnet.Apply(static, c); err != nil {
			n.log.Error("static address", "interface", static, "err", err)
		} else {
			n.log.Info("static address", "interface", static, "address", c.Address)
			n.set(static, ifaceAddr{static, c.Address.String(), "static"}, c.DNS)
		}
	}
}

// set records an interface's address and rewrites resolv.conf from the
// DNS servers of all interfaces.
func (n *network) set(ifname string, a ifaceAddr, dns []netip.Addr) {
	n.mu.Lock()
	n.addrs[ifname] = a
	n.dns[ifname] = dns
	names := make([]string, 0, len(n.dns))
	for k := range n.dns {
		names = append(names, k)
	}
	sort.Strings(names)
	var all []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, k := range names {
		for _, d := range n.dns[k] {
			if !seen[d] {
				seen[d] = true
				all = append(all, d)
			}
		}
	}
	n.mu.Unlock()
	if err := osnet.WriteResolvConf(resolvConf, all); err != nil {
		n.log.Error("resolv.conf", "err", err)
	}
}

func (n *network) addresses() []ifaceAddr {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]ifaceAddr, 0, len(n.addrs))
	for _, a := range n.addrs {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].iface < out[j].iface })
	return out
}

func (n *network) stop() {
	n.mu.Lock()
	cancel := n.cancel
	n.cancel = nil
	n.mu.Unlock()
	if cancel != nil {
		cancel()
		n.wg.Wait()
	}
}
