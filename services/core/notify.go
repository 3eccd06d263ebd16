package core

import (
	"context"
	"net/url"
	"sort"

	"github.com/piot-appliance/piot/services/store"
)

// MaxWebhookURLLen bounds a notification webhook URL.
const MaxWebhookURLLen = 2048

// OrgNotifications are an org's notification settings as callers see
// them: the webhook secret is write-only.
type OrgNotifications struct {
	WebhookURL       string
	WebhookSecretSet bool
}

// NotificationTargets is who hears about an org's alarms; only the monitor
// (an in-process service) reads it, secret included.
type NotificationTargets struct {
	OrgName       string
	Emails        []string // opted-in members and every admin
	WebhookURL    string
	WebhookSecret string
}

func validWebhook(u string) error {
	if u == "" {
		return nil
	}
	if len(u) > MaxWebhookURLLen {
		return errf(CodeBadInput, "webhook URL is longer than %d bytes", MaxWebhookURLLen)
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.User != nil {
		return errf(CodeBadInput, "webhook URL must be an http(s) URL without credentials")
	}
	return nil
}

// OrgNotificationSettings returns an org's settings (admins and members).
func (c *Core) OrgNotificationSettings(a Actor, orgID ID) (OrgNotifications, error) {
	if _, err := c.Org(a, orgID); err != nil {
		return OrgNotifications{}, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	o := c.orgs[orgID]
	return OrgNotifications{WebhookURL: o.NotifyWebhookURL, WebhookSecretSet: o.NotifyWebhookSecret != ""}, nil
}

// SetOrgNotifications changes an org's webhook (admins only); nil keeps a
// field, "" clears it.
func (c *Core) SetOrgNotifications(ctx context.Context, a Actor, orgID ID, webhookURL, secret *string) (OrgNotifications, error) {
	if err := requireAdmin(a); err != nil {
		return OrgNotifications{}, err
	}
	if webhookURL != nil {
		if err := validWebhook(*webhookURL); err != nil {
			return OrgNotifications{}, err
		}
	}
	if secret != nil {
		if err := validText("webhook secret", *secret); err != nil {
			return OrgNotifications{}, err
		}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	cur, ok := c.orgs[orgID]
	c.mu.RUnlock()
	if !ok {
		return OrgNotifications{}, errf(CodeNotFound, "Org does not exist")
	}
	n := *cur
	if webhookURL != nil {
		n.NotifyWebhookURL = *webhookURL
	}
	if secret != nil {
		n.NotifyWebhookSecret = *secret
	}
	if err := update(ctx, c.st.Orgs, n.ID, cur, &n, "Org"); err != nil {
		return OrgNotifications{}, err
	}
	c.mu.Lock()
	c.putOrg(&n)
	c.mu.Unlock()
	c.audit(ctx, a, "setOrgNotifications", changes("org "+cur.Name, cur, &n))
	return OrgNotifications{WebhookURL: n.NotifyWebhookURL, WebhookSecretSet: n.NotifyWebhookSecret != ""}, nil
}

// SetUserNotify opts a user in or out of alarm e-mails (admins, or the
// user).
func (c *Core) SetUserNotify(ctx context.Context, a Actor, userID ID, on bool) (bool, error) {
	if err := requireAuth(a); err != nil {
		return false, err
	}
	if !a.Admin && a.UserID != userID {
		return false, errForbidden
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	cur, ok := c.users[userID]
	c.mu.RUnlock()
	if !ok {
		return false, errf(CodeNotFound, "user does not exist")
	}
	n := *cur
	n.NotifyAlarms = on
	if err := update(ctx, c.st.Users, n.ID, cur, &n, "user"); err != nil {
		return false, err
	}
	c.mu.Lock()
	c.putUser(&n)
	c.mu.Unlock()
	c.audit(ctx, a, "setUserNotify", "user "+cur.Email+" (alarm e-mails "+onOff(on)+")")
	return on, nil
}

// UserNotify reports whether a user gets alarm e-mails.
func (c *Core) UserNotify(a Actor, userID ID) (bool, error) {
	if _, err := c.User(a, userID); err != nil {
		return false, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.users[userID].NotifyAlarms, nil
}

// NotificationTargets lists who is told about an alarm of the org (an
// unassigned thing's alarms go to admins only: orgID zero).
func (c *Core) NotificationTargets(orgID ID) NotificationTargets {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var nt NotificationTargets
	seen := map[string]bool{}
	add := func(u *store.User) {
		if !seen[u.Email] {
			seen[u.Email] = true
			nt.Emails = append(nt.Emails, u.Email)
		}
	}
	for _, u := range c.users {
		if u.IsAdmin {
			add(u)
		}
	}
	if o, ok := c.orgs[orgID]; ok {
		nt.OrgName = o.Name
		nt.WebhookURL, nt.WebhookSecret = o.NotifyWebhookURL, o.NotifyWebhookSecret
		for uid := range c.orgUsers[orgID] {
			if u := c.users[uid]; u != nil && u.NotifyAlarms {
				add(u)
			}
		}
	}
	sort.Strings(nt.Emails)
	return nt
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
