package appliance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/piot-appliance/piot/services/monitor"
)

// monitorService watches last-seen deadlines, raises and clears alarms and
// sends notifications. It starts after core and stops before it, because
// it writes alarms until it returns.
type monitorService struct {
	app *Appliance
	m   *monitor.Monitor
}

func (s *monitorService) Name() string { return "monitor" }

func (s *monitorService) Start(ctx context.Context) error {
	a := s.app
	smtp, err := smtpConfig(a)
	if err != nil {
		return err
	}
	m, err := monitor.New(monitor.Config{SMTP: smtp, WebhookTimeout: a.cfg.NotifyTimeout, Logger: a.log},
		monitor.Deps{Core: a.core.c, Store: a.store.st})
	if err != nil {
		return err
	}
	if err := m.Start(ctx); err != nil {
		return err
	}
	s.m = m
	return nil
}

func (s *monitorService) Stop(ctx context.Context) error { return s.m.Stop(ctx) }

func (s *monitorService) probe() (bool, string) {
	st := s.m.Stats()
	return true, fmt.Sprintf("%d things watched, %d alarms active", st.Watched, st.ActiveAlarms)
}

func smtpConfig(a *Appliance) (monitor.SMTPConfig, error) {
	c := a.cfg
	sc := monitor.SMTPConfig{
		Host: c.SMTPHost, Port: c.SMTPPort, Username: c.SMTPUsername, Password: c.SMTPPassword,
		From: c.SMTPFrom, StartTLS: c.SMTPStartTLS && c.SMTPHost != "",
	}
	if c.SMTPCAFile != "" {
		pem, err := os.ReadFile(c.SMTPCAFile)
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
