package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/piot-appliance/piot/services/core"
)

// The org detail: its members with their alarm e-mails, its webhook, its
// Prometheus scrape tokens and its storage settings, as core lets the
// actor read and change them.

// orgDetailMsg is what the detail shows of one org.
type orgDetailMsg struct {
	org    string
	users  []core.User
	emails map[core.ID]bool // the members whose opt-in core lets the actor read
	notify core.OrgNotifications
	// tokens is nil when core does not list them to the actor (members).
	tokens []core.MetricsToken
}

var (
	keyNotify      = key.NewBinding(key.WithKeys("e"), key.WithHelp("e", "alarm e-mails on/off"))
	keyWebhook     = key.NewBinding(key.WithKeys("w"), key.WithHelp("w", "webhook"))
	keyTestHook    = key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "test webhook"))
	keyTokenNew    = key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "new metrics token"))
	keyTokenRevoke = key.NewBinding(key.WithKeys("v"), key.WithHelp("v", "revoke metrics token"))
	keyStorage     = key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "storage settings"))
)

func (s *orgsScreen) detailKeys() []key.Binding {
	ks := []key.Binding{keyListBack, keyNotify}
	if s.env.actor.IsAdministrator() {
		ks = append(ks, keyAddMem, keyDelMem, keyWebhook)
		if s.env.deps.Webhooks != nil {
			ks = append(ks, keyTestHook)
		}
		ks = append(ks, keyTokenNew, keyTokenRevoke, keyStorage)
	}
	return append(ks, s.members.keys()...)
}

func (s *orgsScreen) loadDetail(hex string) tea.Cmd {
	e := s.env
	o, ok := s.orgs[hex]
	if !ok {
		return nil
	}
	return e.run(func(a core.Actor) (tea.Msg, error) {
		us, err := e.core.OrgUsers(a, o.ID)
		if err != nil {
			return nil, err
		}
		msg := orgDetailMsg{org: hex, users: us, emails: map[core.ID]bool{}}
		for _, u := range us {
			if on, err := e.core.UserNotify(a, u.ID); err == nil {
				msg.emails[u.ID] = on
			}
		}
		if msg.notify, err = e.core.OrgNotificationSettings(a, o.ID); err != nil {
			return nil, err
		}
		if a.IsAdministrator() {
			if msg.tokens, err = e.core.MetricsTokens(a, o.ID); err != nil {
				return nil, err
			}
			if msg.tokens == nil {
				msg.tokens = []core.MetricsToken{}
			}
		}
		return msg, nil
	})
}

func (s *orgsScreen) showDetail(msg orgDetailMsg) {
	if msg.org != s.open {
		return
	}
	s.detail = msg
	rows := make([]row, 0, len(msg.users))
	for _, u := range msg.users {
		emails := "–"
		if on, ok := msg.emails[u.ID]; ok {
			emails = onOff(on)
		}
		rows = append(rows, row{key: u.ID.Hex(), cells: []string{u.Email, onOff(u.IsAdmin), emails}})
	}
	s.members.setRows(rows)
}

// detailKey handles the keys of the detail that are not the members'
// list's own; ok is false for keys it does not know.
func (s *orgsScreen) detailKey(k tea.KeyPressMsg, o core.Org) (tea.Cmd, bool) {
	e := s.env
	switch {
	case key.Matches(k, keyNotify):
		r, ok := s.members.selected()
		if !ok {
			return nil, true
		}
		uid, err := core.ParseID(r.key)
		if err != nil {
			return nil, true
		}
		on, email := !s.detail.emails[uid], r.cells[0]
		return s.ov.exec(func(a core.Actor) (string, error) {
			if _, err := e.core.SetUserNotify(e.ctx, a, uid, on); err != nil {
				return "", err
			}
			return fmt.Sprintf("alarm e-mails to %s: %s", email, onOff(on)), nil
		}, nil), true
	case key.Matches(k, keyWebhook):
		return s.editWebhook(o), true
	case key.Matches(k, keyTestHook):
		if err := core.AuthorizeAdmin(e.actor, core.ActTestWebhook); err != nil {
			return e.refuse(err), true
		}
		if e.deps.Webhooks == nil {
			return e.refuse(fmt.Errorf("%w: no monitor sends webhooks here", ErrUnsupported)), true
		}
		id, name := o.ID, o.Name
		return s.ov.exec(func(a core.Actor) (string, error) {
			if err := e.deps.Webhooks.TestWebhook(e.ctx, a, id); err != nil {
				return "", err
			}
			return "the webhook of " + name + " accepted the test request", nil
		}, nil), true
	case key.Matches(k, keyTokenNew):
		if err := core.AuthorizeAdmin(e.actor, core.ActMetricsTokens); err != nil {
			return e.refuse(err), true
		}
		f := newForm("New metrics token of " + o.Name)
		f.note = "A Prometheus scraping /metrics with it sees only this org's things."
		id, name := o.ID, o.Name
		return s.ov.openReveal(f, func(a core.Actor, _ *form) (*reveal, error) {
			tok, err := e.core.CreateMetricsToken(e.ctx, a, id)
			if err != nil {
				return nil, err
			}
			return &reveal{
				title:  "New metrics token of " + name,
				lines:  []string{"id     " + tok.ID, "token  " + tok.Token, "", "Send it as a bearer token on GET /metrics."},
				secret: tok.Token,
			}, nil
		}), true
	case key.Matches(k, keyTokenRevoke):
		return s.revokeToken(o), true
	case key.Matches(k, keyStorage):
		return s.editStorage(o), true
	}
	return nil, false
}

func (s *orgsScreen) editWebhook(o core.Org) tea.Cmd {
	e := s.env
	if err := core.AuthorizeAdmin(e.actor, core.ActSetNotifications); err != nil {
		return e.refuse(err)
	}
	cur := s.detail.notify
	f := newForm("Webhook of "+o.Name).
		text("url", "URL", cur.WebhookURL, "webhook URL").
		secret("secret", "New secret", "webhook secret").
		boolean("clear", "Clear the secret", false)
	f.note = "Alarms are POSTed here, signed with the secret. Empty URL: no webhook."
	if cur.WebhookSecretSet {
		f.note = "A secret is set (not shown); leave New secret empty to keep it."
	}
	id, name := o.ID, o.Name
	return s.ov.open(f, func(a core.Actor, f *form) (string, error) {
		url := strings.TrimSpace(f.value("url"))
		var secret *string
		switch {
		case f.value("secret") != "" && f.value("clear") == "yes":
			return "", core.NewError(core.CodeBadInput, "webhook secret: type a new one or clear it, not both")
		case f.value("secret") != "":
			v := f.value("secret")
			secret = &v
		case f.value("clear") == "yes":
			secret = new(string)
		}
		n, err := e.core.SetOrgNotifications(e.ctx, a, id, &url, secret)
		if err != nil {
			return "", err
		}
		if n.WebhookURL == "" {
			return "no webhook for " + name, nil
		}
		return "saved the webhook of " + name, nil
	})
}

func (s *orgsScreen) revokeToken(o core.Org) tea.Cmd {
	e := s.env
	if err := core.AuthorizeAdmin(e.actor, core.ActMetricsTokens); err != nil {
		return e.refuse(err)
	}
	if len(s.detail.tokens) == 0 {
		return func() tea.Msg { return statusMsg{text: o.Name + " has no metrics token"} }
	}
	values, labels := make([]string, 0, len(s.detail.tokens)), make([]string, 0, len(s.detail.tokens))
	for _, t := range s.detail.tokens {
		values, labels = append(values, t.ID), append(labels, t.ID+" created "+unixTime(t.Created))
	}
	f := newForm("Revoke a metrics token of "+o.Name).pick("token", "Token", values, labels, "", "metrics token")
	f.note = "A Prometheus scraping with it gets 401 from now on."
	id := o.ID
	return s.ov.open(f, func(a core.Actor, f *form) (string, error) {
		tok := f.value("token")
		if err := e.core.RevokeMetricsToken(e.ctx, a, id, tok); err != nil {
			return "", err
		}
		return "revoked metrics token " + tok, nil
	})
}

func (s *orgsScreen) editStorage(o core.Org) tea.Cmd {
	e := s.env
	if err := core.AuthorizeAdmin(e.actor, core.ActChangeOrg); err != nil {
		return e.refuse(err)
	}
	f := newForm("Storage settings of "+o.Name).
		text("influxdb", "InfluxDB database", o.InfluxDB, "influxdb").
		text("influxdb_username", "InfluxDB user", o.InfluxDBUsername, "influxdb_username").
		secret("influxdb_password", "InfluxDB password", "influxdb_password").
		text("mysqldb", "MySQL database", o.MySQLDB, "mysqldb").
		text("mysqldb_username", "MySQL user", o.MySQLDBUsername, "mysqldb_username").
		secret("mysqldb_password", "MySQL password", "mysqldb_password")
	f.note = "Passwords are not shown; an empty one keeps the current."
	id := o.ID
	return s.ov.open(f, func(a core.Actor, f *form) (string, error) {
		n, err := e.core.UpdateOrg(e.ctx, a, core.OrgUpdate{ID: id,
			InfluxDB: f.str("influxdb"), InfluxDBUsername: f.str("influxdb_username"), InfluxDBPassword: f.str("influxdb_password"),
			MySQLDB: f.str("mysqldb"), MySQLDBUsername: f.str("mysqldb_username"), MySQLDBPassword: f.str("mysqldb_password")})
		if err != nil {
			return "", err
		}
		return "saved the storage settings of " + n.Name, nil
	})
}

// detailHead is the org's settings above its members.
func (s *orgsScreen) detailHead(o core.Org, width int) string {
	var b strings.Builder
	b.WriteString(styleTitle.Render(cut("Organization "+printable(o.Name), width)) + "\n")
	if o.Description != "" {
		b.WriteString(styleDim.Render(cut("  "+printable(o.Description), width)) + "\n")
	}
	line := func(k, v string) { b.WriteString(cut("  "+pad(k, 15)+" "+printable(v), width) + "\n") }
	d := s.detail
	hook := "none"
	if d.notify.WebhookURL != "" {
		hook = d.notify.WebhookURL
	}
	if d.notify.WebhookSecretSet {
		hook += " · secret set"
	} else if d.notify.WebhookURL != "" {
		hook += " · no secret"
	}
	line("webhook", hook)
	if d.tokens != nil {
		toks := fmt.Sprintf("%d", len(d.tokens))
		for _, t := range d.tokens {
			toks += " · " + t.ID
		}
		line("metrics tokens", toks)
	}
	line("InfluxDB", storageText(o.InfluxDB, o.InfluxDBUsername))
	line("MySQL", storageText(o.MySQLDB, o.MySQLDBUsername))
	b.WriteString(styleTitle.Render(cut("Members of "+printable(o.Name), width)) + "\n")
	return b.String()
}

func storageText(db, user string) string {
	if db == "" && user == "" {
		return "–"
	}
	return fmt.Sprintf("database %s, user %s", orDash(db), orDash(user))
}
