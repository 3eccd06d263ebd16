package initd

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
)

// bootArgs are the piot.* arguments of the kernel command line. They seed
// /data/piot.yaml at first boot and choose what to do with a damaged data
// partition; later boots take their settings from the file.
type bootArgs struct {
	AdminKey string // an OpenSSH public key, spaces written as '+'
	Hostname string
	IP       string // "dhcp" or "<addr>/<prefix>[,<gateway>[,<dns>...]]"
	Data     string // "", "repair" or "format"
	Device   string // data device, e.g. /dev/vdb; empty finds it by name
}

func readBootArgs() (bootArgs, error) {
	raw, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return bootArgs{}, err
	}
	return parseBootArgs(string(raw))
}

func parseBootArgs(cmdline string) (bootArgs, error) {
	var b bootArgs
	for _, f := range strings.Fields(cmdline) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || !strings.HasPrefix(k, "piot.") {
			continue
		}
		switch k {
		case "piot.admin_key":
			k, err := decodeAdminKey(v)
			if err != nil {
				return b, err
			}
			b.AdminKey = k
		case "piot.hostname":
			b.Hostname = v
		case "piot.ip":
			b.IP = v
		case "piot.data":
			if v != "repair" && v != "format" {
				return b, fmt.Errorf("piot.data=%s: want repair or format", v)
			}
			b.Data = v
		case "piot.data_device":
			b.Device = v
		default:
			return b, fmt.Errorf("unknown kernel argument %s", k)
		}
	}
	return b, nil
}

// decodeAdminKey undoes the '+' for spaces of piot.admin_key. The base64
// blob has '+' signs of its own, so the blob ends at the first '+' where
// what comes before is exactly one public key.
func decodeAdminKey(v string) (string, error) {
	typ, rest, ok := strings.Cut(v, "+")
	if !ok {
		return "", fmt.Errorf("piot.admin_key: want <type>+<base64 key>[+comment]")
	}
	for i := 0; i <= len(rest); i++ {
		if i < len(rest) && rest[i] != '+' {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(rest[:i])
		if err != nil {
			continue
		}
		key, err := ssh.ParsePublicKey(raw)
		if err != nil || key.Type() != typ {
			continue
		}
		line := typ + " " + rest[:i]
		if i < len(rest) {
			line += " " + strings.ReplaceAll(rest[i+1:], "+", " ")
		}
		return line, nil
	}
	return "", fmt.Errorf("piot.admin_key: not an OpenSSH public key of type %s", typ)
}

// ipSettings turns piot.ip into piot.yaml keys.
func ipSettings(v string) (map[string]string, error) {
	if v == "" {
		return nil, nil
	}
	if v == "dhcp" {
		return map[string]string{"network": "dhcp"}, nil
	}
	parts := strings.Split(v, ",")
	if _, err := netip.ParsePrefix(parts[0]); err != nil {
		return nil, fmt.Errorf("piot.ip=%s: want dhcp or <address>/<prefix>[,<gateway>[,<dns>...]]", v)
	}
	out := map[string]string{"network": "static", "net-address": parts[0]}
	if len(parts) > 1 {
		out["net-gateway"] = parts[1]
	}
	if len(parts) > 2 {
		out["net-dns"] = strings.Join(parts[2:], ",")
	}
	return out, nil
}
