package broker

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"
)

func servedSerial(t *testing.T, addr string, roots *x509.CertPool) *big.Int {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseCertPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTLSWithGeneratedCA: the first start creates a CA and a server
// certificate with the right names, lifetimes and file modes; clients that
// pin the CA connect (Go and mosquitto_sub); ReloadTLS swaps the
// certificate for new handshakes without dropping a connected client.
func TestTLSWithGeneratedCA(t *testing.T) {
	b := startBroker(t, func(c *Config) {
		c.MQTTSAddr = "127.0.0.1:0"
		c.TLSNames = []string{"mqtt.example.test", "10.9.8.7"}
	})
	a := newTenant(t, "tls")
	tlsDir := filepath.Join(b.dir, "tls")

	for name, mode := range map[string]os.FileMode{caKeyFile: 0o600, serverKeyFile: 0o600, caCertFile: 0o644, serverCertFile: 0o644} {
		st, err := os.Stat(filepath.Join(tlsDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s mode %v, want %v", name, st.Mode().Perm(), mode)
		}
	}
	ca := readCert(t, filepath.Join(tlsDir, caCertFile))
	if !ca.IsCA || ca.NotAfter.Before(time.Now().Add(9*365*24*time.Hour)) {
		t.Errorf("CA: IsCA=%v NotAfter=%v", ca.IsCA, ca.NotAfter)
	}
	if k, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("CA key %T", ca.PublicKey)
	}
	if !bytes.Equal(b.CACertPEM(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})) {
		t.Error("CACertPEM differs from ca.crt")
	}
	srv := readCert(t, filepath.Join(tlsDir, serverCertFile))
	if d := time.Until(srv.NotAfter); d < 700*24*time.Hour || d > 731*24*time.Hour {
		t.Errorf("server certificate lifetime %v", d)
	}
	host, _ := os.Hostname()
	for _, name := range []string{"localhost", "mqtt.example.test", host} {
		if err := srv.VerifyHostname(name); err != nil {
			t.Errorf("SAN %s: %v", name, err)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1", "10.9.8.7"} {
		if err := srv.VerifyHostname(ip); err != nil {
			t.Errorf("SAN %s: %v", ip, err)
		}
	}

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(b.CACertPEM())
	addr := b.addr(ListenerTLS)
	if _, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost"}); err == nil {
		t.Fatal("handshake succeeded without the appliance CA")
	}

	c, msgs, err := dial3(t, "ssl://"+addr, a.username, a.password, func(o *paho3.ClientOptions) {
		o.SetTLSConfig(&tls.Config{RootCAs: roots})
	})
	if err != nil {
		t.Fatal(err)
	}
	subscribe3(t, c, a.topic("#"))

	// mosquitto_sub pins the CA file.
	if _, ok := mosquittoPath(t, "mosquitto_sub"); ok {
		h, p := hostPort(t, addr)
		done := make(chan string, 1)
		go func() {
			out, err := mosquitto(t, "mosquitto_sub", "--cafile", filepath.Join(tlsDir, caCertFile), "-h", h, "-p", p,
				"-u", a.username, "-P", a.password, "-t", a.topic("pinned"), "-C", "1", "-W", "5")
			if err != nil {
				out += " " + err.Error()
			}
			done <- out
		}()
		eventually(t, 5*time.Second, "mosquitto_sub subscribed", func() bool { return b.subscriptions() >= 2 })
		if err := publish3(t, c, a.topic("pinned"), 1, false, "over tls"); err != nil {
			t.Fatal(err)
		}
		if out := <-done; strings.TrimSpace(out) != "over tls" {
			t.Fatalf("mosquitto_sub over TLS: %q", out)
		}
	}

	before := servedSerial(t, addr, roots)
	if err := os.Remove(filepath.Join(tlsDir, serverCertFile)); err != nil {
		t.Fatal(err)
	}
	if err := b.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	after := servedSerial(t, addr, roots)
	if before.Cmp(after) == 0 {
		t.Fatal("reload did not change the served certificate")
	}
	// The connection made before the reload is still up.
	if err := publish3(t, c, a.topic("after-reload"), 1, false, "still here"); err != nil {
		t.Fatal(err)
	}
	expect3(t, msgs, a.topic("after-reload"), "still here")
}

// writeSelfSigned writes a self-signed server certificate for localhost.
func writeSelfSigned(t *testing.T, certPath, keyPath string) *big.Int {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := randomSerial()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
		IsCA:         true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeKey(keyPath, key); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return serial
}

// TestTLSUserCertificate: a user-provided certificate replaces the
// generated one and is re-read by ReloadTLS; a broken file leaves the
// previous certificate in service.
func TestTLSUserCertificate(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "my.crt"), filepath.Join(dir, "my.key")
	first := writeSelfSigned(t, certPath, keyPath)
	b := startBroker(t, func(c *Config) {
		c.MQTTSAddr = "127.0.0.1:0"
		c.TLSCertFile, c.TLSKeyFile = certPath, keyPath
	})
	addr := b.addr(ListenerTLS)
	pool := func() *x509.CertPool {
		p := x509.NewCertPool()
		pemBytes, _ := os.ReadFile(certPath)
		p.AppendCertsFromPEM(pemBytes)
		return p
	}
	if got := servedSerial(t, addr, pool()); got.Cmp(first) != 0 {
		t.Fatalf("served %v, want the user's %v", got, first)
	}
	second := writeSelfSigned(t, certPath, keyPath)
	if err := b.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	roots := pool()
	if got := servedSerial(t, addr, roots); got.Cmp(second) != 0 {
		t.Fatalf("after reload served %v, want %v", got, second)
	}
	if err := os.WriteFile(certPath, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.ReloadTLS(); err == nil {
		t.Fatal("reload of a broken certificate succeeded")
	}
	if got := servedSerial(t, addr, roots); got.Cmp(second) != 0 {
		t.Fatal("a failed reload replaced the certificate")
	}
	if _, err := New(Config{DataDir: t.TempDir(), TLSCertFile: certPath}, Deps{Core: fixture.core}); err == nil {
		t.Fatal("certificate without key accepted")
	}
}

// TestTLSMaterialSurvivesRestart: devices pin the CA, so a restart must
// keep it (and the still valid server certificate).
func TestTLSMaterialSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b1 := startBrokerIn(t, dir, nil)
	ca1 := b1.CACertPEM()
	srv1 := readCert(t, filepath.Join(dir, "tls", serverCertFile))
	b1.stop(t)
	b2 := startBrokerIn(t, dir, nil)
	if !bytes.Equal(ca1, b2.CACertPEM()) {
		t.Fatal("CA changed across restart")
	}
	if srv2 := readCert(t, filepath.Join(dir, "tls", serverCertFile)); srv2.SerialNumber.Cmp(srv1.SerialNumber) != 0 {
		t.Fatal("valid server certificate reissued on restart")
	}
}
