package web

import (
	"net/http"

	"github.com/piot-appliance/piot/services/core"
)

// webhookRow is one org's notification settings in the list.
type webhookRow struct {
	Org      core.Org
	Settings core.OrgNotifications
}

// webhookData is the edit page of one org's notifications.
type webhookData struct {
	Org      core.Org
	Settings core.OrgNotifications
	// Members and whether each gets alarm e-mails (as core lets the
	// actor read it).
	Members []memberNotify
	// Error is core's refusal of the last save, shown with the form.
	Error string
	// URL is what the form shows (the refused input after an error).
	URL string
	// CanTest: the appliance can send a test request.
	CanTest bool
}

type memberNotify struct {
	Email  string
	Admin  bool
	Emails bool
}

// webhookList lists the webhook of every org the actor sees. Members may
// read their orgs' settings (core allows it); only admins get the link,
// and core refuses their changes.
func (s *Server) webhookList(w http.ResponseWriter, r *http.Request, sess *session) {
	c := s.deps.Core
	orgs, err := c.Orgs(sess.actor)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	rows := make([]webhookRow, 0, len(orgs))
	for _, o := range orgs {
		st, err := c.OrgNotificationSettings(sess.actor, o.ID)
		if err != nil {
			s.fail(w, r, sess, err)
			return
		}
		rows = append(rows, webhookRow{Org: o, Settings: st})
	}
	s.show(w, r, sess, http.StatusOK, "webhooks", "Webhooks", "/webhooks", rows)
}

// webhookOrg reads the org of the path and its settings through core.
func (s *Server) webhookOrg(r *http.Request, sess *session) (webhookData, error) {
	c := s.deps.Core
	id, err := core.ParseID(r.PathValue("org"))
	if err != nil {
		return webhookData{}, err
	}
	o, err := c.Org(sess.actor, id)
	if err != nil {
		return webhookData{}, err
	}
	st, err := c.OrgNotificationSettings(sess.actor, id)
	if err != nil {
		return webhookData{}, err
	}
	d := webhookData{Org: o, Settings: st, URL: st.WebhookURL, CanTest: s.deps.WebhookTest != nil}
	if users, err := c.OrgUsers(sess.actor, id); err == nil {
		for _, u := range users {
			on, err := c.UserNotify(sess.actor, u.ID)
			if err != nil {
				continue // core does not let this actor read it
			}
			d.Members = append(d.Members, memberNotify{Email: u.Email, Admin: u.IsAdmin, Emails: on})
		}
	}
	return d, nil
}

func (s *Server) webhookForm(w http.ResponseWriter, r *http.Request, sess *session) {
	d, err := s.webhookOrg(r, sess)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	s.show(w, r, sess, http.StatusOK, "webhook", "Webhook of "+d.Org.Name, "/webhooks", d)
}

// webhookSave sets the URL and, when one is typed or clearing is asked
// for, the secret (write-only: an empty field keeps the current one).
// Core validates and refuses non-admins; a bad URL is shown with the
// form, as typed.
func (s *Server) webhookSave(w http.ResponseWriter, r *http.Request, sess *session) {
	d, err := s.webhookOrg(r, sess)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	u := r.PostFormValue("url")
	var secret *string
	if v := r.PostFormValue("secret"); v != "" {
		secret = &v
	} else if r.PostFormValue("clear_secret") != "" {
		empty := ""
		secret = &empty
	}
	if _, err := s.deps.Core.SetOrgNotifications(r.Context(), sess.actor, d.Org.ID, &u, secret); err != nil {
		if core.CodeOf(err) != core.CodeBadInput {
			s.fail(w, r, sess, err)
			return
		}
		d.Error, d.URL = core.Message(err), u
		s.show(w, r, sess, statusOf(core.CodeOf(err)), "webhook", "Webhook of "+d.Org.Name, "/webhooks", d)
		return
	}
	http.Redirect(w, r, "/webhooks?done=webhook-saved", http.StatusSeeOther)
}

// webhookDelete clears the URL and the secret.
func (s *Server) webhookDelete(w http.ResponseWriter, r *http.Request, sess *session) {
	id, err := core.ParseID(r.PathValue("org"))
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	empty := ""
	if _, err := s.deps.Core.SetOrgNotifications(r.Context(), sess.actor, id, &empty, &empty); err != nil {
		s.fail(w, r, sess, err)
		return
	}
	http.Redirect(w, r, "/webhooks?done=webhook-deleted", http.StatusSeeOther)
}

// webhookTest sends one test request now and says how the receiver
// answered: accepted, or why not, with the form.
func (s *Server) webhookTest(w http.ResponseWriter, r *http.Request, sess *session) {
	d, err := s.webhookOrg(r, sess)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	if s.deps.WebhookTest == nil {
		s.refuse(w, r, sess, http.StatusNotFound, "This appliance cannot send test webhooks.")
		return
	}
	if err := s.deps.WebhookTest(r.Context(), sess.actor, d.Org.ID); err != nil {
		if code := core.CodeOf(err); code != core.CodeUnavailable && code != core.CodeBadInput {
			s.fail(w, r, sess, err)
			return
		}
		d.Error = core.Message(err)
		s.show(w, r, sess, statusOf(core.CodeOf(err)), "webhook", "Webhook of "+d.Org.Name, "/webhooks", d)
		return
	}
	http.Redirect(w, r, "/webhooks/"+d.Org.ID.Hex()+"?done=webhook-tested", http.StatusSeeOther)
}
