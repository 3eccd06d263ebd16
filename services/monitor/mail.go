package monitor

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"strconv"
	"strings"
	"time"
)

func (n *notifier) sendMail(ctx context.Context, x notification) {
	m := n.m
	targets := m.core.NotificationTargets(x.alarm.OrgID)
	var to []string
	for _, e := range targets.Emails {
		if validAddress(e) == nil {
			to = append(to, e)
		}
	}
	if len(to) == 0 {
		return
	}
	org := targets.OrgName
	if org == "" {
		org = x.alarm.OrgName
	}
	subject, body := mailText(x, org)
	msg := buildMessage(m.cfg.SMTP.From, subject, body, x.at)
	err := retry(ctx, n.mailTry, func() { m.stats.emailsRetried.Add(1) }, func(int) (time.Duration, error) {
		err := m.smtpSend(ctx, to, msg)
		if err != nil && smtpPermanent(err) {
			return 0, permanent{err}
		}
		return 0, err
	})
	if err != nil {
		m.stats.emailsFailed.Add(1)
		m.log.Error("alarm e-mail failed", "event", x.event, "alarm", x.alarm.ID, "err", err)
		return
	}
	m.stats.emailsSent.Add(1)
	m.log.Info("alarm e-mail sent", "event", x.event, "alarm", x.alarm.ID, "recipients", len(to))
}

// mailText is the subject and plain-text body of a notification.
func mailText(x notification, org string) (subject, body string) {
	a := x.alarm
	name := org + "/" + x.thing()
	lastSeen := "never"
	if a.LastSeen > 0 {
		lastSeen = time.Unix(a.LastSeen, 0).UTC().Format(time.RFC3339)
	}
	var b strings.Builder
	if x.event == EventRaised {
		subject = "[piot][alarm] " + name + " not available"
		fmt.Fprintf(&b, "Thing %s did not report within its interval of %d s and is not available.\n\n", name, a.Interval)
	} else {
		subject = "[piot][ok] " + name + " available again"
		fmt.Fprintf(&b, "Thing %s reported again and is available.\n\n", name)
	}
	fmt.Fprintf(&b, "Organisation: %s\n", org)
	fmt.Fprintf(&b, "Thing:        %s (id %s)\n", x.thing(), a.ThingID.Hex())
	fmt.Fprintf(&b, "Last seen:    %s\n", lastSeen)
	fmt.Fprintf(&b, "Raised at:    %s\n", a.RaisedAt.UTC().Format(time.RFC3339))
	if x.event == EventCleared {
		fmt.Fprintf(&b, "Cleared at:   %s\n", x.at.UTC().Format(time.RFC3339))
		fmt.Fprintf(&b, "Down for:     %s\n", x.at.Sub(a.RaisedAt).Round(time.Second))
	}
	fmt.Fprintf(&b, "Alarm id:     %s\n", a.ID)
	return subject, b.String()
}

// buildMessage renders an RFC 5322 message. Recipients stay on the
// envelope only (members of an org do not learn each other's or the
// admins' addresses).
func buildMessage(from, subject, body string, at time.Time) []byte {
	clean := func(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }
	var id [12]byte
	_, _ = rand.Read(id[:])
	domain := "piot.local"
	if i := strings.LastIndexByte(from, '@'); i >= 0 {
		domain = from[i+1:]
	}
	var b bytes.Buffer
	h := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	h("From", from)
	h("To", "undisclosed-recipients:;")
	h("Subject", mime.QEncoding.Encode("utf-8", clean(subject)))
	h("Date", at.UTC().Format(time.RFC1123Z))
	h("Message-ID", "<"+hex.EncodeToString(id[:])+"@"+domain+">")
	h("MIME-Version", "1.0")
	h("Content-Type", `text/plain; charset="utf-8"`)
	h("Content-Transfer-Encoding", "8bit")
	h("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n"))
	return b.Bytes()
}

// smtpSend delivers one message in one session: STARTTLS when offered
// (required when configured), AUTH PLAIN when a username is set.
func (m *Monitor) smtpSend(ctx context.Context, to []string, msg []byte) error {
	cfg := m.cfg.SMTP
	timeout := m.cfg.WebhookTimeout
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	c, err := smtp.NewClient(conn, cfg.Host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.TLSConfig != nil {
			tc = cfg.TLSConfig.Clone()
		}
		if tc.ServerName == "" {
			tc.ServerName = cfg.Host
		}
		if err := c.StartTLS(tc); err != nil {
			return permanent{fmt.Errorf("smtp starttls: %w", err)}
		}
	} else if cfg.StartTLS {
		return permanent{errors.New("smtp: server does not offer STARTTLS, which is required")}
	}
	if cfg.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return permanent{errors.New("smtp: server does not offer AUTH")}
		}
		if err := c.Auth(smtp.PlainAuth("", cfg.Username, cfg.Password, cfg.Host)); err != nil {
			return fmt.Errorf("smtp auth: %w", err)
		}
	}
	if err := c.Mail(cfg.From); err != nil {
		return err
	}
	accepted := 0
	var rcptErr error
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			rcptErr = err
			m.log.Warn("smtp recipient refused", "to", r, "err", err)
			continue
		}
		accepted++
	}
	if accepted == 0 {
		return fmt.Errorf("smtp: no recipient accepted: %w", rcptErr)
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	// The message is accepted: a failed QUIT must not cause a resend.
	_ = c.Quit()
	return nil
}
