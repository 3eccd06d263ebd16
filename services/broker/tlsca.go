package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/piot-appliance/piot/internal/fileutil"
)

// Lifetimes of the appliance's own certificates. The CA is what devices
// pin, so it lives long; the server certificate is renewed automatically
// (at start and on reload) well before it expires.
const (
	caValidity     = 10 * 365 * 24 * time.Hour
	serverValidity = 2 * 365 * 24 * time.Hour
	renewBefore    = 30 * 24 * time.Hour
	clockSkew      = time.Hour // NotBefore backdating for devices with a slow clock
)

// Files under DataDir/tls.
const (
	caCertFile     = "ca.crt"
	caKeyFile      = "ca.key"
	serverCertFile = "server.crt"
	serverKeyFile  = "server.key"
)

// authority is the appliance CA.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// loadOrCreateCA reads the CA from dir, creating it on first start.
func loadOrCreateCA(dir string) (*authority, error) {
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, os.ErrNotExist) {
		return createCA(certPath, keyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s does not match %s", keyPath, certPath)
	}
	return &authority{cert: cert, key: key, pem: certPEM}, nil
}

func createCA(certPath, keyPath string) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "PIOT appliance CA " + host, Organization: []string{"PIOT"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeKey(keyPath, key); err != nil {
		return nil, err
	}
	if err := fileutil.WriteFile(certPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key, pem: certPEM}, nil
}

// serverNames are the SANs the generated server certificate must carry.
type serverNames struct {
	dns []string
	ips []net.IP
}

// wantedNames collects the host name, localhost, loopback and the
// machine's addresses, plus the configured extra names.
func wantedNames(extra []string) serverNames {
	var n serverNames
	seenDNS := map[string]bool{}
	seenIP := map[string]bool{}
	addDNS := func(s string) {
		if s != "" && !seenDNS[s] {
			seenDNS[s] = true
			n.dns = append(n.dns, s)
		}
	}
	addIP := func(ip net.IP) {
		if ip != nil && !seenIP[ip.String()] {
			seenIP[ip.String()] = true
			n.ips = append(n.ips, ip)
		}
	}
	if h, err := os.Hostname(); err == nil {
		addDNS(h)
	}
	addDNS("localhost")
	addIP(net.IPv4(127, 0, 0, 1).To4())
	addIP(net.IPv6loopback)
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLinkLocalUnicast() && !ipn.IP.IsLoopback() {
				addIP(normalizeIP(ipn.IP))
			}
		}
	}
	for _, e := range extra {
		if ip := net.ParseIP(e); ip != nil {
			addIP(normalizeIP(ip))
		} else {
			addDNS(e)
		}
	}
	return n
}

func normalizeIP(ip net.IP) net.IP {
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip
}

// coveredBy reports whether cert carries every wanted name.
func (n serverNames) coveredBy(cert *x509.Certificate) bool {
	have := map[string]bool{}
	for _, d := range cert.DNSNames {
		have[d] = true
	}
	for _, ip := range cert.IPAddresses {
		have[normalizeIP(ip).String()] = true
	}
	for _, d := range n.dns {
		if !have[d] {
			return false
		}
	}
	for _, ip := range n.ips {
		if !have[ip.String()] {
			return false
		}
	}
	return true
}

// issueServerCert signs a new server certificate for names and writes it
// with its key to certPath/keyPath.
func (ca *authority) issueServerCert(certPath, keyPath string, names serverNames) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate server key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	cn := "localhost"
	if len(names.dns) > 0 {
		cn = names.dns[0]
	}
	now := time.Now()
	notAfter := now.Add(serverValidity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"PIOT"}},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names.dns,
		IPAddresses:  names.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return fmt.Errorf("sign server certificate: %w", err)
	}
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	return fileutil.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// needsRenewal reports why the generated server certificate at certPath
// must be reissued, or "" if it is fine.
func (ca *authority) needsRenewal(certPath string, names serverNames) string {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return "missing"
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return "unreadable"
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return "not valid under the appliance CA"
	}
	if time.Until(cert.NotAfter) < renewBefore {
		return "expiring"
	}
	if !names.coveredBy(cert) {
		return "host names or addresses changed"
	}
	return ""
}

func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	return serial, nil
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

func parseKeyPEM(b []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse key: %w", err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	return ec, nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	return fileutil.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}
