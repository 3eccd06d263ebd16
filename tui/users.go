package tui

import (
	"context"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/piot-appliance/piot/services/core"
)

// usersScreen manages accounts (admins only): admin flag, password,
// organisation membership and console SSH keys.
type usersScreen struct {
	env    *env
	list   *list
	keysL  *list
	ov     overlay
	users  map[string]userInfo
	orgs   []core.Org
	loaded bool

	open string // hex id of the user shown in detail

	authKeysOpen bool // the keys of authorized_keys are shown
	authKeysL    *list
	authKeys     AuthorizedKeyFile
	authKeysAs   string
	authKeysErr  string
}

type userInfo struct {
	core.User
	orgs   []core.Org
	keys   []core.SSHKey
	emails bool // gets alarm e-mails of their orgs
}

type usersMsg struct {
	users []userInfo
	orgs  []core.Org
}

var (
	keyAdmin    = key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "toggle admin"))
	keyPassword = key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "reset password"))
	keyOrgAdd   = key.NewBinding(key.WithKeys("o"), key.WithHelp("o", "add to org"))
	keyOrgDel   = key.NewBinding(key.WithKeys("O"), key.WithHelp("O", "remove from org"))
	keySSHAdd   = key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "add SSH key"))
	keySSHDel   = key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "remove SSH key"))
	keyUserOpen = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "orgs & SSH keys"))
	keyEmails   = key.NewBinding(key.WithKeys("e"), key.WithHelp("e", "alarm e-mails on/off"))
)

func newUsers(e *env) *usersScreen {
	l := newList([]column{
		{title: "Email", width: 16, flex: 2},
		{title: "Admin", width: 5},
		{title: "Organizations", width: 12, flex: 1, drop: 1},
		{title: "Keys", width: 4, right: true, numeric: true, drop: 2},
		{title: "E-mails", width: 7, drop: 4},
		{title: "Created", width: 10, drop: 3},
	}, "no users")
	l.sortable = true
	k := newList([]column{
		{title: "Fingerprint", width: 20, flex: 2},
		{title: "Comment", width: 8, flex: 1, drop: 1},
		{title: "Added", width: 10, drop: 2},
	}, "no SSH keys: press n to add one")
	return &usersScreen{env: e, list: l, keysL: k, authKeysL: newAuthKeysList(), ov: overlay{tag: "users", env: e}, users: map[string]userInfo{}}
}

func (s *usersScreen) title() string   { return "Users" }
func (s *usersScreen) adminOnly() bool { return true }
func (s *usersScreen) capturing() bool {
	return s.ov.active() || s.list.capturing() || s.keysL.capturing() || s.authKeysL.capturing()
}

func (s *usersScreen) keys() []key.Binding {
	if s.authKeysOpen {
		return append([]key.Binding{keyAuthKeyDel, keyListBack}, s.authKeysL.keys()...)
	}
	if s.open != "" {
		return append([]key.Binding{keySSHAdd, keySSHDel, keyOrgAdd, keyOrgDel, keyAdmin, keyPassword, keyEmails, keyListBack}, s.keysL.keys()...)
	}
	ks := []key.Binding{keyUserOpen, keyNew, keyAdmin, keyPassword, keyEmails, keyDelete}
	if s.env.deps.AuthorizedKeys != nil {
		ks = append(ks, keyAuthKeys)
	}
	return append(ks, s.list.keys()...)
}

func (s *usersScreen) refresh() tea.Cmd {
	e := s.env
	if !e.actor.IsAdministrator() {
		return nil
	}
	users := e.run(func(a core.Actor) (tea.Msg, error) {
		us, err := e.core.Users(a)
		if err != nil {
			return nil, err
		}
		orgs, err := e.core.Orgs(a)
		if err != nil {
			return nil, err
		}
		msg := usersMsg{orgs: orgs}
		for _, u := range us {
			info := userInfo{User: u}
			info.orgs, _ = e.core.UserOrgs(a, u.ID)
			info.keys, _ = e.core.SSHKeys(a, u.ID)
			info.emails, _ = e.core.UserNotify(a, u.ID)
			msg.users = append(msg.users, info)
		}
		return msg, nil
	})
	return tea.Batch(users, e.run(func(a core.Actor) (tea.Msg, error) { return s.loadAuthKeys(a), nil }))
}

func (s *usersScreen) update(msg tea.Msg) tea.Cmd {
	if handled, cmd := s.ov.update(msg); handled {
		return cmd
	} else if d, ok := msg.(doneMsg); ok && d.tag == s.ov.tag {
		return tea.Batch(cmd, s.refresh())
	}
	switch msg := msg.(type) {
	case usersMsg:
		s.loaded = true
		s.orgs = msg.orgs
		s.users = make(map[string]userInfo, len(msg.users))
		rows := make([]row, 0, len(msg.users))
		for _, u := range msg.users {
			s.users[u.ID.Hex()] = u
			rows = append(rows, row{key: u.ID.Hex(), cells: []string{
				u.Email, onOff(u.IsAdmin), orgNames(u.orgs), fmt.Sprint(len(u.keys)), onOff(u.emails), unixDate(u.Created),
			}})
		}
		s.list.setRows(rows)
		s.fillKeys()
		return nil
	case authKeysMsg:
		s.showAuthKeys(msg)
		return nil
	case tea.KeyPressMsg:
		return s.key(msg)
	}
	return nil
}

func (s *usersScreen) fillKeys() {
	u, ok := s.users[s.open]
	if !ok {
		s.open = ""
		return
	}
	rows := make([]row, 0, len(u.keys))
	for _, k := range u.keys {
		rows = append(rows, row{key: k.Fingerprint, cells: []string{k.Fingerprint, k.Comment, unixDate(k.Added)}})
	}
	s.keysL.setRows(rows)
}

func orgNames(orgs []core.Org) string {
	names := make([]string, len(orgs))
	for i, o := range orgs {
		names[i] = o.Name
	}
	return strings.Join(names, ", ")
}

func (s *usersScreen) current() (userInfo, bool) {
	if s.open != "" {
		u, ok := s.users[s.open]
		return u, ok
	}
	r, ok := s.list.selected()
	if !ok {
		return userInfo{}, false
	}
	u, ok := s.users[r.key]
	return u, ok
}

func (s *usersScreen) key(k tea.KeyPressMsg) tea.Cmd {
	if s.authKeysOpen {
		return s.authKeysKey(k)
	}
	if s.open != "" {
		return s.detailKey(k)
	}
	if used, cmd := s.list.update(k, 10); used {
		return cmd
	}
	if key.Matches(k, keyNew) {
		return s.createUser()
	}
	if key.Matches(k, keyAuthKeys) && s.env.deps.AuthorizedKeys != nil {
		s.authKeysOpen = true
		return nil
	}
	u, have := s.current()
	switch {
	case !have:
		return nil
	case key.Matches(k, keyUserOpen):
		s.open = u.ID.Hex()
		s.fillKeys()
		return nil
	case key.Matches(k, keyAdmin):
		return s.toggleAdmin(u)
	case key.Matches(k, keyPassword):
		return s.resetPassword(u)
	case key.Matches(k, keyEmails):
		return s.toggleEmails(u)
	case key.Matches(k, keyDelete):
		return s.deleteUser(u)
	}
	return nil
}

// detailKey handles keys in the view of one user: their organizations
// and SSH keys.
func (s *usersScreen) detailKey(k tea.KeyPressMsg) tea.Cmd {
	if used, cmd := s.keysL.update(k, 10); used {
		return cmd
	}
	if key.Matches(k, keyListBack) {
		s.open = ""
		return nil
	}
	u, have := s.current()
	switch {
	case !have:
		return nil
	case key.Matches(k, keyAdmin):
		return s.toggleAdmin(u)
	case key.Matches(k, keyPassword):
		return s.resetPassword(u)
	case key.Matches(k, keyEmails):
		return s.toggleEmails(u)
	case key.Matches(k, keySSHAdd):
		return s.addSSHKey(u)
	case key.Matches(k, keySSHDel):
		return s.removeSSHKey(u)
	case key.Matches(k, keyOrgAdd):
		return s.addToOrg(u)
	case key.Matches(k, keyOrgDel):
		return s.removeFromOrg(u)
	}
	return nil
}

func (s *usersScreen) createUser() tea.Cmd {
	e := s.env
	f := newForm("New user").
		text("email", "Email", "", "email").
		secret("password", "Password", "password").
		boolean("admin", "Admin", false)
	return s.ov.open(f, func(a core.Actor, f *form) (string, error) {
		u, err := e.core.CreateUser(e.ctx, a, strings.TrimSpace(f.value("email")), f.value("password"), f.value("admin") == "yes")
		if err != nil {
			return "", err
		}
		return "created user " + u.Email, nil
	})
}

func (s *usersScreen) toggleAdmin(u userInfo) tea.Cmd {
	e := s.env
	id, email, admin := u.ID, u.Email, !u.IsAdmin
	verb := "Grant admin rights to"
	if !admin {
		verb = "Revoke admin rights of"
	}
	s.ov.ask(fmt.Sprintf("%s %s?", verb, email), func(a core.Actor) (string, error) {
		if _, err := e.core.UpdateUser(e.ctx, a, core.UserUpdate{ID: id, IsAdmin: &admin}); err != nil {
			return "", err
		}
		if admin {
			return email + " is now an admin", nil
		}
		return email + " is no longer an admin", nil
	})
	return nil
}

func (s *usersScreen) toggleEmails(u userInfo) tea.Cmd {
	e := s.env
	id, email, on := u.ID, u.Email, !u.emails
	return s.ov.exec(func(a core.Actor) (string, error) {
		if _, err := e.core.SetUserNotify(e.ctx, a, id, on); err != nil {
			return "", err
		}
		return fmt.Sprintf("alarm e-mails to %s: %s", email, onOff(on)), nil
	}, nil)
}

func (s *usersScreen) resetPassword(u userInfo) tea.Cmd {
	e := s.env
	f := newForm("Reset the password of "+u.Email).
		secret("password", "New password", "password").
		secret("again", "Repeat", "repeat")
	f.note = "Their API tokens are revoked; console keys keep working."
	id, email := u.ID, u.Email
	return s.ov.open(f, func(a core.Actor, f *form) (string, error) {
		pw := f.value("password")
		if pw != f.value("again") {
			return "", &core.Error{Code: core.CodeBadInput, Msg: "repeat: the two entries differ"}
		}
		if _, err := e.core.UpdateUser(e.ctx, a, core.UserUpdate{ID: id, Password: &pw}); err != nil {
			return "", err
		}
		return "password of " + email + " changed", nil
	})
}

func (s *usersScreen) deleteUser(u userInfo) tea.Cmd {
	e := s.env
	id, email := u.ID, u.Email
	s.ov.ask(fmt.Sprintf("Delete user %s and their memberships?", email), func(a core.Actor) (string, error) {
		if err := e.core.DeleteUser(e.ctx, a, id); err != nil {
			return "", err
		}
		return "deleted user " + email, nil
	})
	return nil
}

func (s *usersScreen) addSSHKey(u userInfo) tea.Cmd {
	e := s.env
	f := newForm("Add an SSH key for "+u.Email).
		text("key", "Public key", "", "key", "OpenSSH public key")
	f.note = "Paste lines of authorized_keys: ssh-ed25519 AAAA… comment"
	id, email := u.ID, u.Email
	return s.ov.open(f, func(a core.Actor, f *form) (string, error) {
		keys, err := e.core.AddSSHKeys(e.ctx, a, id, f.value("key"))
		if err != nil {
			return "", err
		}
		if len(keys) == 1 {
			return fmt.Sprintf("added key %s for %s", keys[0].Fingerprint, email), nil
		}
		return fmt.Sprintf("%d keys added for %s", len(keys), email), nil
	})
}

// removeSSHKey removes the key selected in the user's list of keys.
func (s *usersScreen) removeSSHKey(u userInfo) tea.Cmd {
	e := s.env
	r, ok := s.keysL.selected()
	if !ok {
		return nil
	}
	id, fp := u.ID, r.key
	s.ov.ask(fmt.Sprintf("Remove key %s?", fp), func(a core.Actor) (string, error) {
		if err := e.core.RemoveSSHKey(e.ctx, a, id, fp); err != nil {
			return "", err
		}
		return "removed key " + fp, nil
	})
	return nil
}

func (s *usersScreen) addToOrg(u userInfo) tea.Cmd {
	free := orgsOtherThan(s.orgs, u.orgs)
	if len(free) == 0 {
		return func() tea.Msg { return statusMsg{text: "no organization left to add " + u.Email + " to"} }
	}
	return s.pickOrg("Add "+u.Email+" to an organization", free, u.ID, s.env.core.AddOrgUser, "added to ")
}

func (s *usersScreen) removeFromOrg(u userInfo) tea.Cmd {
	if len(u.orgs) == 0 {
		return func() tea.Msg { return statusMsg{text: u.Email + " belongs to no organization"} }
	}
	return s.pickOrg("Remove "+u.Email+" from an organization", u.orgs, u.ID, s.env.core.RemoveOrgUser, "removed from ")
}

// pickOrg asks for one of orgs and applies change to it and user uid;
// the status line then says done and the organization's name.
func (s *usersScreen) pickOrg(title string, orgs []core.Org, uid core.ID, change func(context.Context, core.Actor, core.ID, core.ID) error, done string) tea.Cmd {
	e := s.env
	values, labels := make([]string, 0, len(orgs)), make([]string, 0, len(orgs))
	for _, o := range orgs {
		values, labels = append(values, o.ID.Hex()), append(labels, o.Name)
	}
	f := newForm(title).pick("org", "Organization", values, labels, "")
	return s.ov.open(f, func(a core.Actor, f *form) (string, error) {
		oid, err := core.ParseID(f.value("org"))
		if err != nil {
			return "", err
		}
		if err := change(e.ctx, a, oid, uid); err != nil {
			return "", err
		}
		name, _ := e.core.OrgNameOf(oid)
		return done + name, nil
	})
}

// orgsOtherThan lists the organizations of all that are not in these, in
// the order of all.
func orgsOtherThan(all, these []core.Org) []core.Org {
	in := map[core.ID]bool{}
	for _, o := range these {
		in[o.ID] = true
	}
	var out []core.Org
	for _, o := range all {
		if !in[o.ID] {
			out = append(out, o)
		}
	}
	return out
}

func (s *usersScreen) view(width, height int) string {
	if s.ov.form != nil || s.ov.shown != nil {
		return s.ov.view(width, height)
	}
	if !s.env.actor.IsAdministrator() {
		return "Only admins manage users."
	}
	if !s.loaded {
		return styleDim.Render("loading…")
	}
	bodyH := height
	if s.ov.confirm != nil {
		bodyH--
	}
	var body string
	if u, ok := s.users[s.open]; s.authKeysOpen {
		body = s.authKeysView(width, bodyH)
	} else if ok && s.open != "" {
		var b strings.Builder
		b.WriteString(styleTitle.Render(cut(printable(u.Email), width)) + "\n")
		b.WriteString(cut(fmt.Sprintf("  admin: %s · alarm e-mails: %s · created %s", onOff(u.IsAdmin), onOff(u.emails), unixDate(u.Created)), width) + "\n")
		b.WriteString(cut("  organizations: "+orDash(orgNames(u.orgs)), width) + "\n\n")
		b.WriteString(styleTitle.Render("SSH keys (console logins)") + "\n")
		body = b.String() + s.keysL.view(width, bodyH-5)
	} else {
		body = styleDim.Render(cut(fmt.Sprintf("%d users%s", s.list.len(), s.authKeysHint()), width)) + "\n" + s.list.view(width, bodyH-1)
	}
	if s.ov.confirm != nil {
		return fitLines(body, width, bodyH) + "\n" + s.ov.confirm.view(width)
	}
	return body
}

func unixDate(u int64) string {
	if u <= 0 {
		return "–"
	}
	return unixTime(u)[:10]
}
