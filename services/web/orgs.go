package web

import (
	"net/http"
	"net/url"
	"slices"

	"github.com/piot-appliance/piot/services/core"
)

// pathID is the {name} segment of the path as an ID; a malformed one is
// core's bad-input error, so fail answers it like any other.
func pathID(r *http.Request, name string) (core.ID, error) {
	return core.ParseID(r.PathValue(name))
}

// orgList lists the orgs core shows the actor: all for admins, their own
// for members.
func (s *Server) orgList(w http.ResponseWriter, r *http.Request, sess *session) {
	orgs, err := s.deps.Core.Orgs(sess.actor)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	s.show(w, r, sess, http.StatusOK, "orgs", "Organizations", "/orgs", orgs)
}

type orgFormData struct {
	Org   core.Org
	Error string
}

// orgNew is the creation form; core says first whether the actor may
// create orgs, so a typed URL gets the same 403 as the POST would.
func (s *Server) orgNew(w http.ResponseWriter, r *http.Request, sess *session) {
	if err := core.AuthorizeAdmin(sess.actor, core.ActCreateOrg); err != nil {
		s.fail(w, r, sess, err)
		return
	}
	s.show(w, r, sess, http.StatusOK, "org_new", "New organization", "/orgs", orgFormData{})
}

func (s *Server) orgCreate(w http.ResponseWriter, r *http.Request, sess *session) {
	name, desc := r.PostFormValue("name"), r.PostFormValue("description")
	o, err := s.deps.Core.CreateOrg(r.Context(), sess.actor, name, desc)
	if err != nil {
		if refusedInput(err) {
			// Show the form again with what was typed and why not.
			s.show(w, r, sess, statusOf(core.CodeOf(err)), "org_new", "New organization", "/orgs",
				orgFormData{Org: core.Org{Name: name, Description: desc}, Error: core.Message(err)})
			return
		}
		s.fail(w, r, sess, err)
		return
	}
	http.Redirect(w, r, "/orgs/"+o.ID.Hex()+"?done=org-created", http.StatusSeeOther)
}

// refusedInput reports errors the user can fix in the form they sent.
func refusedInput(err error) bool {
	c := core.CodeOf(err)
	return c == core.CodeBadInput || c == core.CodeConflict
}

type orgEditData struct {
	Org     core.Org
	Members []core.User
	// Candidates are the users that can be added (admins: all users who
	// are not members yet; others: none, core lists users to admins only).
	Candidates []core.User
	// MQTT is set right after the credentials were set or rotated: the
	// only time the password is shown.
	MQTT  *core.MQTTCredentials
	Error string
}

// orgEdit shows one org: its settings, MQTT username and members. Core
// refuses other orgs to non-admins (403) and unknown ones to admins (404).
func (s *Server) orgEdit(w http.ResponseWriter, r *http.Request, sess *session) {
	s.showOrg(w, r, sess, http.StatusOK, nil, "")
}

func (s *Server) showOrg(w http.ResponseWriter, r *http.Request, sess *session, status int, mqtt *core.MQTTCredentials, formErr string) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	o, err := s.deps.Core.Org(sess.actor, id)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	members, err := s.deps.Core.OrgUsers(sess.actor, id)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	d := orgEditData{Org: o, Members: members, MQTT: mqtt, Error: formErr}
	if all, err := s.deps.Core.Users(sess.actor); err == nil {
		for _, u := range all {
			if !slices.ContainsFunc(members, func(m core.User) bool { return m.ID == u.ID }) {
				d.Candidates = append(d.Candidates, u)
			}
		}
	}
	s.show(w, r, sess, status, "org_edit", o.Name, "/orgs", d)
}

func (s *Server) orgUpdate(w http.ResponseWriter, r *http.Request, sess *session) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	name, desc := r.PostFormValue("name"), r.PostFormValue("description")
	if _, err := s.deps.Core.UpdateOrg(r.Context(), sess.actor, core.OrgUpdate{ID: id, Name: &name, Description: &desc}); err != nil {
		if refusedInput(err) {
			s.showOrg(w, r, sess, statusOf(core.CodeOf(err)), nil, core.Message(err))
			return
		}
		s.fail(w, r, sess, err)
		return
	}
	http.Redirect(w, r, "/orgs/"+id.Hex()+"?done=org-saved", http.StatusSeeOther)
}

// orgMQTT sets or rotates the org's MQTT credentials. The new password is
// in this answer only (core keeps its hash), so it is rendered here, not
// after a redirect.
func (s *Server) orgMQTT(w http.ResponseWriter, r *http.Request, sess *session) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	creds, err := s.deps.Core.SetOrgMQTTCredentials(r.Context(), sess.actor, id, r.PostFormValue("username"))
	if err != nil {
		if refusedInput(err) {
			s.showOrg(w, r, sess, statusOf(core.CodeOf(err)), nil, core.Message(err))
			return
		}
		s.fail(w, r, sess, err)
		return
	}
	s.showOrg(w, r, sess, http.StatusOK, &creds, "")
}

// orgDeleteForm asks before deleting: the page works without script.
func (s *Server) orgDeleteForm(w http.ResponseWriter, r *http.Request, sess *session) {
	if err := core.AuthorizeAdmin(sess.actor, core.ActDeleteOrg); err != nil {
		s.fail(w, r, sess, err)
		return
	}
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	o, err := s.deps.Core.Org(sess.actor, id)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	s.show(w, r, sess, http.StatusOK, "org_delete", "Delete "+o.Name, "/orgs", o)
}

func (s *Server) orgDelete(w http.ResponseWriter, r *http.Request, sess *session) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	if err := s.deps.Core.DeleteOrg(r.Context(), sess.actor, id); err != nil {
		s.fail(w, r, sess, err)
		return
	}
	http.Redirect(w, r, "/orgs?done=org-deleted", http.StatusSeeOther)
}

// orgAddMember adds the user chosen on the org's page.
func (s *Server) orgAddMember(w http.ResponseWriter, r *http.Request, sess *session) {
	org, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	user, err := core.ParseID(r.PostFormValue("user"))
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	if err := s.deps.Core.AddOrgUser(r.Context(), sess.actor, org, user); err != nil {
		s.fail(w, r, sess, err)
		return
	}
	http.Redirect(w, r, back(r, "/orgs/"+org.Hex())+"?done=member-added", http.StatusSeeOther)
}

func (s *Server) orgRemoveMember(w http.ResponseWriter, r *http.Request, sess *session) {
	org, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	user, err := pathID(r, "user")
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	if err := s.deps.Core.RemoveOrgUser(r.Context(), sess.actor, org, user); err != nil {
		s.fail(w, r, sess, err)
		return
	}
	http.Redirect(w, r, back(r, "/orgs/"+org.Hex())+"?done=member-removed", http.StatusSeeOther)
}

// back is the page a form names in its "back" field (the same action is
// offered on the org's and on the user's page), kept on this appliance.
func back(r *http.Request, fallback string) string {
	u, err := url.Parse(r.PostFormValue("back"))
	if err != nil || u.Path == "" {
		return fallback
	}
	if p := localPath(u.Path); p != "/" {
		return p
	}
	return fallback
}
