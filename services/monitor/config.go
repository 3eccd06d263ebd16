package monitor

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"
)

// Config tunes the monitor.
type Config struct {
	// SMTP is the mail relay; an empty Host disables e-mail (webhooks
	// still go out).
	SMTP SMTPConfig
	// WebhookTimeout bounds one webhook request (and one SMTP session);
	// 0 means 10 s.
	WebhookTimeout time.Duration
	// Now is the clock for recorded times; nil means time.Now. Deadlines
	// run on real timers whatever it says.
	Now    func() time.Time
	Logger *slog.Logger
}

// SMTPConfig is the mail relay the alarm e-mails go through.
type SMTPConfig struct {
	Host string
	Port int
	// Username and Password log in with AUTH PLAIN, which net/smtp only
	// sends over TLS (or to localhost).
	Username, Password string
	// From is the envelope sender and From header.
	From string
	// StartTLS makes STARTTLS mandatory: a relay that does not offer it
	// is an error. Without it STARTTLS is still used when offered.
	StartTLS bool
	// TLSConfig verifies the relay's certificate; nil means the system
	// roots. ServerName defaults to Host.
	TLSConfig *tls.Config
}

// Enabled reports whether e-mail is configured at all.
func (c SMTPConfig) Enabled() bool { return c.Host != "" }

// Validate checks the settings at start, so a typo shows up in the log
// of the boot rather than as silently missing alarm mails.
func (c SMTPConfig) Validate() error {
	if c.Host == "" {
		if c.Username != "" || c.Password != "" || c.From != "" || c.StartTLS {
			return errors.New("smtp: host is required when other smtp settings are given")
		}
		return nil
	}
	if strings.ContainsAny(c.Host, " \t\r\n/") {
		return fmt.Errorf("smtp: invalid host %q", c.Host)
	}
	if c.Port < 1 || c.Port > 65535 {
		return fmt.Errorf("smtp: port %d out of range 1-65535", c.Port)
	}
	if c.From == "" {
		return errors.New("smtp: from address is required")
	}
	if err := validAddress(c.From); err != nil {
		return fmt.Errorf("smtp: from address %q: %w", c.From, err)
	}
	if c.Username != "" && c.Password == "" {
		return errors.New("smtp: password is required when a username is set")
	}
	if c.Username == "" && c.Password != "" {
		return errors.New("smtp: username is required when a password is set")
	}
	return nil
}

// validAddress accepts a bare address (no display name), the only form
// safe to put on MAIL FROM / RCPT TO lines.
func validAddress(s string) error {
	if strings.ContainsAny(s, "\r\n<> ") {
		return errors.New("not a plain e-mail address")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return errors.New("not a valid e-mail address")
	}
	return nil
}
