package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	// The image has no zoneinfo files; the console's time zone must
	// still resolve.
	_ "time/tzdata"
)

// Validate checks the OS settings; the console's System screen and the
// YAML file get the same answers.
func (o OS) Validate() error {
	if err := ValidHostname(o.Hostname); err != nil {
		return fmt.Errorf("hostname: %w", err)
	}
	switch o.Network {
	case "dhcp":
	case "static":
		if _, err := netip.ParsePrefix(o.NetAddress); err != nil {
			return fmt.Errorf("net-address %q: want an address with prefix length, e.g. 192.168.1.20/24", o.NetAddress)
		}
		if o.NetGateway != "" {
			if _, err := netip.ParseAddr(o.NetGateway); err != nil {
				return fmt.Errorf("net-gateway %q: not an IP address", o.NetGateway)
			}
		}
	default:
		return fmt.Errorf("network %q: want dhcp or static", o.Network)
	}
	if o.NetInterface != "" && (len(o.NetInterface) > 15 || strings.ContainsAny(o.NetInterface, "/ \x00")) {
		return fmt.Errorf("net-interface %q: not an interface name", o.NetInterface)
	}
	for _, d := range o.NetDNS {
		if _, err := netip.ParseAddr(d); err != nil {
			return fmt.Errorf("net-dns %q: not an IP address", d)
		}
	}
	if len(o.NTPServers) > 8 {
		return errors.New("ntp-servers: at most 8")
	}
	for _, s := range o.NTPServers {
		host := s
		if h, p, err := net.SplitHostPort(s); err == nil {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("ntp-servers %q: bad port", s)
			}
			host = h
		}
		if _, err := netip.ParseAddr(host); err != nil && ValidHostname(host) != nil {
			return fmt.Errorf("ntp-servers %q: not a host name or address", s)
		}
	}
	if o.Timezone == "" {
		return errors.New("timezone must not be empty (UTC, or an IANA name such as Europe/Prague)")
	}
	if _, err := time.LoadLocation(o.Timezone); err != nil {
		return fmt.Errorf("timezone %q: not a known IANA time zone", o.Timezone)
	}
	return nil
}

// ValidHostname accepts DNS names of letters, digits and hyphens (RFC 1123).
func ValidHostname(h string) error {
	if h == "" || len(h) > 253 {
		return errors.New("must have 1 to 253 characters")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q: each dot-separated part must have 1 to 63 characters", h)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q: a part must not start or end with a hyphen", h)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%q: only letters, digits, hyphens and dots", h)
			}
		}
	}
	return nil
}
