package osnet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestPhysical(t *testing.T) {
	sysfs := t.TempDir()
	for _, p := range []string{"enp0s3/device", "eth1/device", "lo/device", "veth0", "br0/bridge"} {
		if err := os.MkdirAll(filepath.Join(sysfs, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := func(name string, flags net.Flags) netlink.Link {
		return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: name, Flags: flags}}
	}
	links := []netlink.Link{
		link("lo", net.FlagLoopback|net.FlagUp),
		link("veth0", net.FlagBroadcast),
		link("eth1", net.FlagBroadcast),
		link("br0", net.FlagBroadcast),
		link("enp0s3", net.FlagBroadcast|net.FlagUp),
		link("gone", 0), // listed by netlink, already removed from sysfs
	}
	if got, want := physical(links, sysfs), []string{"enp0s3", "eth1"}; !slices.Equal(got, want) {
		t.Errorf("physical = %v, want %v", got, want)
	}
}

// netnsChild marks the re-executed test binary that runs inside a fresh
// network namespace.
const netnsChild = "OSNET_TEST_IN_NETNS"

// TestInNetns runs the real client — socket bound to an interface without
// an address, broadcast both ways — and Apply against the test server
// across a veth pair, each end in its own network namespace, so nothing
// reaches the host's network. It needs root; it re-executes the test
// binary in a new network namespace to keep the host's untouched.
func TestInNetns(t *testing.T) {
	if os.Getenv(netnsChild) != "" {
		inNetns(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestInNetns$", "-test.v", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), netnsChild+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) {
		t.Skipf("cannot create a network namespace: %v", err)
	}
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child failed: %v", err)
	}
	if strings.Contains(string(out), "--- SKIP") {
		t.Skip("child skipped")
	}
}

// nsThread runs funcs on an OS thread that lives in a network namespace
// of its own: the server side of the veth pair.
type nsThread chan func()

func newNSThread(t *testing.T) nsThread {
	th := make(nsThread)
	ready := make(chan error)
	go func() {
		// Never unlocked: when the goroutine ends the runtime discards the
		// thread rather than reuse it in the wrong namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ready <- err
			return
		}
		ready <- nil
		for f := range th {
			f()
		}
	}()
	if err := <-ready; err != nil {
		t.Skipf("unshare: %v", err)
	}
	t.Cleanup(func() { close(th) })
	return th
}

func (th nsThread) do(f func()) {
	done := make(chan struct{})
	th <- func() { defer close(done); f() }
	<-done
}

// setRPFilter turns reverse-path filtering off in the calling thread's
// namespace: with it on, the kernel drops the broadcast OFFER arriving on
// an interface that has no address yet (as on a PC whose distribution
// enables it; the kernel default, which a PID 1 gets, is off).
func setRPFilter(t *testing.T) {
	for _, c := range []string{"all", "default"} {
		if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+c+"/rp_filter", []byte("0"), 0o644); err != nil {
			t.Logf("rp_filter: %v", err)
		}
	}
}

func inNetns(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	setRPFilter(t)

	if err := LoopbackUp(); err != nil {
		t.Fatal(err)
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if lo.Attrs().Flags&net.FlagUp == 0 {
		t.Error("lo is not up")
	}
	if as, _ := addrList(lo); len(as) != 1 || as[0].IPNet.String() != "127.0.0.1/8" {
		t.Errorf("lo addresses = %v", as)
	}
	if err := LoopbackUp(); err != nil {
		t.Errorf("LoopbackUp again: %v", err)
	}
	if _, err := EthernetInterfaces(); err != nil {
		t.Errorf("EthernetInterfaces: %v", err)
	}

	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "piot0"}, PeerName: "piot1"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Skipf("cannot create veth pair: %v", err)
	}
	peer, err := netlink.LinkByName("piot1")
	if err != nil {
		t.Fatal(err)
	}

	// The server end goes to a namespace of its own: were both ends in
	// one, unicast to the client's address would be delivered locally
	// instead of crossing the veth.
	th := newNSThread(t)
	var nsFD *os.File
	th.do(func() { nsFD, err = os.Open("/proc/thread-self/ns/net") })
	if err != nil {
		t.Fatal(err)
	}
	defer nsFD.Close()
	if err := netlink.LinkSetNsFd(peer, int(nsFD.Fd())); err != nil {
		t.Fatal(err)
	}
	var sconn net.PacketConn
	th.do(func() {
		setRPFilter(t)
		var l netlink.Link
		if l, err = netlink.LinkByName("piot1"); err != nil {
			return
		}
		if err = netlink.LinkSetUp(l); err != nil {
			return
		}
		if err = netlink.AddrAdd(l, &netlink.Addr{IPNet: toIPNet(netip.MustParsePrefix("192.0.2.1/24"))}); err != nil {
			return
		}
		sconn, err = listenUDP(ctx, "piot1", serverPort)
	})
	if err != nil {
		t.Fatalf("server side: %v", err)
	}
	srv := newTestServer(t, sconn, func(s *testServer) {
		// RFC 2131 §4.1: unicast to ciaddr when set, else broadcast
		// (asked for by the BROADCAST flag; a NAK always is).
		s.replyTo = func(req, reply *message) net.Addr {
			if !req.ciaddr.IsUnspecified() && reply.msgType() != msgNak {
				return &net.UDPAddr{IP: req.ciaddr.AsSlice(), Port: clientPort}
			}
			if req.flags&flagBroadcast == 0 && reply.msgType() != msgNak {
				t.Errorf("%v without BROADCAST flag: the reply could not reach an unconfigured interface", req.msgType())
			}
			return &net.UDPAddr{IP: net.IPv4bcast, Port: clientPort}
		}
	})

	l, err := Acquire(ctx, "piot0", "piot-netns")
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	wantLease(t, l)
	d := srv.messages(msgDiscover)
	if len(d) == 0 || string(d[0].options[optHostname]) != "piot-netns" {
		t.Errorf("server saw DISCOVERs %v", d)
	}
	client, err := netlink.LinkByName("piot0")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d[0].chaddr[:6], client.Attrs().HardwareAddr) {
		t.Errorf("chaddr % x, link address %v", d[0].chaddr[:6], client.Attrs().HardwareAddr)
	}

	wantConfig := func(addr, gw string) {
		t.Helper()
		as, err := addrList(client)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range as {
			got = append(got, a.IPNet.String())
		}
		if want := strings.Fields(addr); !slices.Equal(got, want) {
			t.Errorf("addresses of piot0 = %v, want only %s", as, addr)
		}
		rs, err := netlink.RouteList(client, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		var defaults []string
		for _, r := range rs {
			if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
				defaults = append(defaults, r.Gw.String())
				if r.Priority != client.Attrs().Index {
					t.Errorf("default route metric %d, want the interface index %d", r.Priority, client.Attrs().Index)
				}
			}
		}
		if gw == "" && len(defaults) != 0 || gw != "" && !slices.Equal(defaults, []string{gw}) {
			t.Errorf("default routes via %v, want %q", defaults, gw)
		}
	}
	cfg := l.Config()
	if err := Apply("piot0", cfg); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	wantConfig("192.0.2.15/24", "192.0.2.1")
	if err := Apply("piot0", cfg); err != nil {
		t.Fatalf("Apply again: %v", err)
	}
	wantConfig("192.0.2.15/24", "192.0.2.1")

	// Renewal: the server unicasts the ACK to the now configured address.
	nl, err := Renew(ctx, "piot0", "piot-netns", l)
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if nl.Address != l.Address {
		t.Errorf("renewed %v, had %v", nl.Address, l.Address)
	}

	// Another address replaces the old one; no gateway leaves routes be.
	if err := Apply("piot0", Config{Address: netip.MustParsePrefix("192.0.2.50/25")}); err != nil {
		t.Fatalf("Apply other: %v", err)
	}
	wantConfig("192.0.2.50/25", "")
	// A gateway outside the subnet gets a link route first.
	if err := Apply("piot0", Config{Address: netip.MustParsePrefix("198.51.100.7/32"), Gateway: netip.MustParseAddr("198.51.100.1")}); err != nil {
		t.Fatalf("Apply /32: %v", err)
	}
	wantConfig("198.51.100.7/32", "198.51.100.1")
	if err := flushIPv4("piot0"); err != nil {
		t.Fatal(err)
	}
	wantConfig("", "")

	// Run: acquires and applies by itself.
	rctx, rcancel := context.WithCancel(ctx)
	leases := make(chan Lease, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- Run(rctx, testLogger(t), "piot0", "piot-netns", func(l Lease) {
			select {
			case leases <- l:
			default:
			}
		})
	}()
	select {
	case l := <-leases:
		wantLease(t, l)
		wantConfig("192.0.2.15/24", "192.0.2.1")
	case <-ctx.Done():
		t.Fatal("Run got no lease")
	}
	rcancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
}
