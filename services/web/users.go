package web

import (
	"net/http"
	"slices"

	"github.com/piot-appliance/piot/services/core"
)

// userList lists all users; core gives the list to admins only.
func (s *Server) userList(w http.ResponseWriter, r *http.Request, sess *session) {
	users, err := s.deps.Core.Users(sess.actor)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	s.show(w, r, sess, http.StatusOK, "users", "Users", "/users", users)
}

type userNewData struct {
	Email string
	Admin bool
	Org   string
	Orgs  []core.Org
	Error string
}

// userNew is the creation form; core decides first that only admins
// manage users, so a typed URL is refused like the POST.
func (s *Server) userNew(w http.ResponseWriter, r *http.Request, sess *session) {
	s.showUserNew(w, r, sess, http.StatusOK, userNewData{})
}

func (s *Server) showUserNew(w http.ResponseWriter, r *http.Request, sess *session, status int, d userNewData) {
	if err := core.AuthorizeAdmin(sess.actor, core.ActAdminister); err != nil {
		s.fail(w, r, sess, err)
		return
	}
	orgs, err := s.deps.Core.Orgs(sess.actor)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	d.Orgs = orgs
	s.show(w, r, sess, status, "user_new", "New user", "/users", d)
}

// userCreate creates the user and, when an org is chosen, the membership:
// the two steps the original manager needed two pages for.
func (s *Server) userCreate(w http.ResponseWriter, r *http.Request, sess *session) {
	d := userNewData{Email: r.PostFormValue("email"), Admin: r.PostFormValue("admin") == "on", Org: r.PostFormValue("org")}
	u, err := s.deps.Core.CreateUser(r.Context(), sess.actor, d.Email, r.PostFormValue("password"), d.Admin)
	if err != nil {
		if refusedInput(err) {
			d.Error = core.Message(err)
			s.showUserNew(w, r, sess, statusOf(core.CodeOf(err)), d)
			return
		}
		s.fail(w, r, sess, err)
		return
	}
	if d.Org != "" {
		org, err := core.ParseID(d.Org)
		if err == nil {
			err = s.deps.Core.AddOrgUser(r.Context(), sess.actor, org, u.ID)
		}
		if err != nil {
			s.fail(w, r, sess, err)
			return
		}
	}
	http.Redirect(w, r, "/users/"+u.ID.Hex()+"?done=user-created", http.StatusSeeOther)
}

type userEditData struct {
	User core.User
	// Self: the signed-in user's own page (a password change signs in
	// again; no deleting oneself).
	Self bool
	Orgs []core.Org
	// Candidates are the orgs the user can be added to (admins only).
	Candidates []core.Org
	Error      string
}

// userEdit shows a user: admins see anybody, users themselves (core).
func (s *Server) userEdit(w http.ResponseWriter, r *http.Request, sess *session) {
	s.showUser(w, r, sess, http.StatusOK, "")
}

func (s *Server) showUser(w http.ResponseWriter, r *http.Request, sess *session, status int, formErr string) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	u, err := s.deps.Core.User(sess.actor, id)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	orgs, err := s.deps.Core.UserOrgs(sess.actor, id)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	d := userEditData{User: u, Self: id == sess.actor.UserID, Orgs: orgs, Error: formErr}
	if sess.actor.IsAdministrator() {
		all, err := s.deps.Core.Orgs(sess.actor)
		if err != nil {
			s.fail(w, r, sess, err)
			return
		}
		for _, o := range all {
			if !slices.ContainsFunc(orgs, func(m core.Org) bool { return m.ID == o.ID }) {
				d.Candidates = append(d.Candidates, o)
			}
		}
	}
	s.show(w, r, sess, status, "user_edit", u.Email, "/users", d)
}

// userUpdate saves the form: admins send email and the admin flag (the
// form always has the "admin-field" marker, so an unticked box means
// false); anybody may send a new password, for themselves only (core).
func (s *Server) userUpdate(w http.ResponseWriter, r *http.Request, sess *session) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	if err := r.ParseForm(); err != nil {
		s.refuse(w, r, sess, http.StatusBadRequest, "The form could not be read.")
		return
	}
	upd := core.UserUpdate{ID: id}
	if r.PostForm.Has("email") {
		email := r.PostFormValue("email")
		upd.Email = &email
	}
	if r.PostForm.Has("admin-field") {
		admin := r.PostFormValue("admin") == "on"
		upd.IsAdmin = &admin
	}
	password := r.PostFormValue("password")
	if password != "" {
		upd.Password = &password
	}
	u, err := s.deps.Core.UpdateUser(r.Context(), sess.actor, upd)
	if err != nil {
		if refusedInput(err) {
			s.showUser(w, r, sess, statusOf(core.CodeOf(err)), core.Message(err))
			return
		}
		s.fail(w, r, sess, err)
		return
	}
	if password != "" && id == sess.actor.UserID {
		// A new password ends every token of the user, this session's too:
		// sign in again with it rather than drop the user on the form.
		s.renewSession(w, r, u.Email, password)
	}
	http.Redirect(w, r, "/users/"+id.Hex()+"?done=user-saved", http.StatusSeeOther)
}

// renewSession replaces the session cookie after the user changed their
// own password; on failure the old cookie simply stops working.
func (s *Server) renewSession(w http.ResponseWriter, r *http.Request, email, password string) {
	a, err := s.deps.Core.Login(r.Context(), email, password)
	if err != nil {
		return
	}
	tok, err := s.deps.Tokens.Issue(a)
	if err != nil {
		s.log.Warn("web: cannot renew the session after a password change", "err", err)
		return
	}
	http.SetCookie(w, s.cookie(r, tok.Value, tok.Expires))
}

// userDeleteForm asks before deleting; core decides who may.
func (s *Server) userDeleteForm(w http.ResponseWriter, r *http.Request, sess *session) {
	if err := core.AuthorizeAdmin(sess.actor, core.ActAdminister); err != nil {
		s.fail(w, r, sess, err)
		return
	}
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	u, err := s.deps.Core.User(sess.actor, id)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	s.show(w, r, sess, http.StatusOK, "user_delete", "Delete "+u.Email, "/users", u)
}

func (s *Server) userDelete(w http.ResponseWriter, r *http.Request, sess *session) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	if err := s.deps.Core.DeleteUser(r.Context(), sess.actor, id); err != nil {
		s.fail(w, r, sess, err)
		return
	}
	http.Redirect(w, r, "/users?done=user-deleted", http.StatusSeeOther)
}

// userAddOrg is the user page's "add to organization" form.
func (s *Server) userAddOrg(w http.ResponseWriter, r *http.Request, sess *session) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	org, err := core.ParseID(r.PostFormValue("org"))
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	if err := s.deps.Core.AddOrgUser(r.Context(), sess.actor, org, id); err != nil {
		s.fail(w, r, sess, err)
		return
	}
	http.Redirect(w, r, "/users/"+id.Hex()+"?done=member-added", http.StatusSeeOther)
}
