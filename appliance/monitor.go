package appliance

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/piot-appliance/piot/appliance/config"
	"github.com/piot-appliance/piot/services/monitor"
)

// smtpConfig is the monitor's mail relay, with the CA file read into a
// pool.
func smtpConfig(c config.SMTP) (monitor.SMTPConfig, error) {
	sc := monitor.SMTPConfig{
		Host: c.Host, Port: c.Port, Username: c.Username, Password: c.Password,
		From: c.From, StartTLS: c.StartTLS && c.Host != "",
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return sc, fmt.Errorf("smtp-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return sc, errors.New("smtp-ca-file: no PEM certificates in it")
		}
		sc.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return sc, sc.Validate()
}
