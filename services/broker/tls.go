package broker

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// certStore serves the TLS listener's certificate. The certificate is
// swapped atomically on reload: established connections keep the session
// they negotiated, new handshakes get the new certificate.
type certStore struct {
	dir               string
	userCert, userKey string
	extraNames        []string
	ca                *authority
	log               *slog.Logger

	mu      sync.Mutex // serializes reloads (file writes)
	current atomic.Pointer[tls.Certificate]
}

// openCertStore creates DataDir/tls with the appliance CA on first start
// and loads the server certificate.
func openCertStore(dir, userCert, userKey string, extraNames []string, log *slog.Logger) (*certStore, error) {
	if (userCert == "") != (userKey == "") {
		return nil, fmt.Errorf("TLS certificate and key must be given together")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	ca, err := loadOrCreateCA(dir)
	if err != nil {
		return nil, err
	}
	c := &certStore{dir: dir, userCert: userCert, userKey: userKey, extraNames: extraNames, ca: ca, log: log}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload re-reads the certificate: the user's files as they are now, or
// the generated one, reissued first if it is missing, expiring, or lacks a
// current host name or address. On error the previous certificate stays.
func (c *certStore) reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	certPath, keyPath := c.userCert, c.userKey
	if certPath == "" {
		certPath, keyPath = filepath.Join(c.dir, serverCertFile), filepath.Join(c.dir, serverKeyFile)
		names := wantedNames(c.extraNames)
		if why := c.ca.needsRenewal(certPath, names); why != "" {
			if err := c.ca.issueServerCert(certPath, keyPath, names); err != nil {
				return err
			}
			c.log.Info("TLS server certificate issued", "reason", why, "dns", names.dns, "ips", len(names.ips))
		}
	}
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return fmt.Errorf("load TLS certificate: %w", err)
	}
	c.current.Store(&cert)
	return nil
}

func (c *certStore) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

// serverConfig is the TLS configuration of the MQTTS listener.
func (c *certStore) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: c.getCertificate,
	}
}
