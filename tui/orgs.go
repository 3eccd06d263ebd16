package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/piot-appliance/piot/services/core"
)

// orgsScreen lists organisations; admins manage them, members see their
// own and choose the one they work in.
type orgsScreen struct {
	env     *env
	list    *list
	members *list
	ov      overlay
	orgs    map[string]core.Org
	users   []core.User // all users, for adding members (admins)
	active  core.ID
	loaded  bool

	open   string // hex id of the org shown in detail
	detail orgDetailMsg
}

type orgsMsg struct {
	orgs    []core.Org
	members map[core.ID]int
	things  map[core.ID]int
	users   []core.User
	active  core.ID
}

var (
	keyMembers  = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "members"))
	keyMQTT     = key.NewBinding(key.WithKeys("m"), key.WithHelp("m", "MQTT credentials"))
	keyActivate = key.NewBinding(key.WithKeys("space"), key.WithHelp("space", "work in this org"))
	keyAddMem   = key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "add member"))
	keyDelMem   = key.NewBinding(key.WithKeys("d", "x"), key.WithHelp("d", "remove member"))
)

func newOrgs(e *env) *orgsScreen {
	l := newList([]column{
		{title: "Name", width: 10, flex: 1},
		{title: "Description", width: 12, flex: 2, drop: 3},
		{title: "MQTT user", width: 12, flex: 1, drop: 2},
		{title: "Members", width: 7, right: true, numeric: true, drop: 4},
		{title: "Things", width: 6, right: true, numeric: true, drop: 1},
	}, "no organizations")
	l.sortable = true
	m := newList([]column{
		{title: "Email", width: 20, flex: 1},
		{title: "Admin", width: 5},
		{title: "Alarm e-mails", width: 13, drop: 1},
	}, "no members")
	return &orgsScreen{env: e, list: l, members: m, ov: overlay{tag: "orgs", env: e}, orgs: map[string]core.Org{}}
}

func (s *orgsScreen) title() string   { return "Orgs" }
func (s *orgsScreen) adminOnly() bool { return false }
func (s *orgsScreen) capturing() bool {
	return s.ov.active() || s.list.capturing() || s.members.capturing()
}

func (s *orgsScreen) keys() []key.Binding {
	admin := s.env.actor.IsAdministrator()
	if s.open != "" {
		return s.detailKeys()
	}
	ks := []key.Binding{keyMembers}
	if admin {
		ks = append(ks, keyNew, keyEdit, keyMQTT, keyDelete)
	}
	ks = append(ks, keyActivate)
	return append(ks, s.list.keys()...)
}

func (s *orgsScreen) refresh() tea.Cmd {
	e := s.env
	cmds := []tea.Cmd{e.run(func(a core.Actor) (tea.Msg, error) {
		orgs, err := e.core.Orgs(a)
		if err != nil {
			return nil, err
		}
		msg := orgsMsg{orgs: orgs, members: map[core.ID]int{}, things: map[core.ID]int{}, active: e.core.ActiveOrg(a)}
		for _, o := range orgs {
			if us, err := e.core.OrgUsers(a, o.ID); err == nil {
				msg.members[o.ID] = len(us)
			}
		}
		if a.IsAdministrator() {
			if page, err := e.core.Things(a, core.ThingQuery{All: true}); err == nil {
				for _, t := range page.Items {
					msg.things[t.OrgID]++
				}
			}
			if us, err := e.core.Users(a); err == nil {
				msg.users = us
			}
		} else {
			msg.things = nil
		}
		return msg, nil
	})}
	if s.open != "" {
		cmds = append(cmds, s.loadDetail(s.open))
	}
	return tea.Batch(cmds...)
}

func (s *orgsScreen) update(msg tea.Msg) tea.Cmd {
	if handled, cmd := s.ov.update(msg); handled {
		return cmd
	} else if d, ok := msg.(doneMsg); ok && d.tag == s.ov.tag {
		return tea.Batch(cmd, s.refresh())
	}
	switch msg := msg.(type) {
	case orgsMsg:
		s.loaded = true
		s.active = msg.active
		s.users = msg.users
		s.orgs = make(map[string]core.Org, len(msg.orgs))
		rows := make([]row, 0, len(msg.orgs))
		for _, o := range msg.orgs {
			s.orgs[o.ID.Hex()] = o
			name := o.Name
			if o.ID == msg.active {
				name = "* " + name
			}
			things := "–"
			if msg.things != nil {
				things = fmt.Sprint(msg.things[o.ID])
			}
			rows = append(rows, row{key: o.ID.Hex(),
				cells: []string{name, o.Description, orDash(o.MQTTUsername), fmt.Sprint(msg.members[o.ID]), things}})
		}
		s.list.setRows(rows)
		if s.open != "" {
			if _, ok := s.orgs[s.open]; !ok {
				s.open = ""
			}
		}
		return nil
	case orgDetailMsg:
		s.showDetail(msg)
		return nil
	case tea.KeyPressMsg:
		if s.open != "" {
			return s.memberKey(msg)
		}
		return s.key(msg)
	}
	return nil
}

func (s *orgsScreen) selected() (core.Org, bool) {
	r, ok := s.list.selected()
	if !ok {
		return core.Org{}, false
	}
	o, ok := s.orgs[r.key]
	return o, ok
}

func (s *orgsScreen) key(k tea.KeyPressMsg) tea.Cmd {
	if used, cmd := s.list.update(k, 10); used {
		return cmd
	}
	e := s.env
	o, have := s.selected()
	switch {
	case key.Matches(k, keyNew):
		if err := core.AuthorizeAdmin(e.actor, core.ActCreateOrg); err != nil {
			return e.refuse(err)
		}
		f := newForm("New organization").
			text("name", "Name", "", "organization name", "organization of such name").
			text("description", "Description", "", "description")
		f.note = "The name is the MQTT topic level: org/<name>/…"
		return s.ov.open(f, func(a core.Actor, f *form) (string, error) {
			o, err := e.core.CreateOrg(e.ctx, a, strings.TrimSpace(f.value("name")), f.value("description"))
			if err != nil {
				return "", err
			}
			return "created organization " + o.Name, nil
		})
	case !have:
		return nil
	case key.Matches(k, keyMembers):
		s.open = o.ID.Hex()
		s.detail = orgDetailMsg{}
		s.members.setRows(nil)
		return s.loadDetail(s.open)
	case key.Matches(k, keyActivate):
		id, name := o.ID, o.Name
		return s.ov.exec(func(a core.Actor) (string, error) {
			if _, err := e.core.SetActiveOrg(e.ctx, a, id); err != nil {
				return "", err
			}
			return "now working in " + name, nil
		}, nil)
	case key.Matches(k, keyEdit):
		if err := core.AuthorizeAdmin(e.actor, core.ActChangeOrg); err != nil {
			return e.refuse(err)
		}
		f := newForm("Edit organization "+o.Name).
			text("name", "Name", o.Name, "organization name", "organization of such name").
			text("description", "Description", o.Description, "description")
		f.note = "Renaming moves the org's MQTT namespace; its devices must follow."
		id := o.ID
		return s.ov.open(f, func(a core.Actor, f *form) (string, error) {
			n, err := e.core.UpdateOrg(e.ctx, a, core.OrgUpdate{ID: id, Name: f.str("name"), Description: f.str("description")})
			if err != nil {
				return "", err
			}
			return "saved organization " + n.Name, nil
		})
	case key.Matches(k, keyMQTT):
		if err := core.AuthorizeAdmin(e.actor, core.ActSetOrgMQTT); err != nil {
			return e.refuse(err)
		}
		user := o.MQTTUsername
		title := "Set MQTT credentials of " + o.Name
		if user != "" {
			title = "Rotate MQTT credentials of " + o.Name
		} else {
			user = o.Name
		}
		f := newForm(title).text("username", "MQTT username", user, "MQTT username")
		f.note = "A new password is generated and shown once; devices using the old one are disconnected."
		id, name := o.ID, o.Name
		return s.ov.openReveal(f, func(a core.Actor, f *form) (*reveal, error) {
			cr, err := e.core.SetOrgMQTTCredentials(e.ctx, a, id, strings.TrimSpace(f.value("username")))
			if err != nil {
				return nil, err
			}
			return &reveal{
				title:  "MQTT credentials of " + name,
				lines:  []string{"username  " + cr.Username, "password  " + cr.Password},
				secret: cr.Password,
			}, nil
		})
	case key.Matches(k, keyDelete):
		if err := core.AuthorizeAdmin(e.actor, core.ActDeleteOrg); err != nil {
			return e.refuse(err)
		}
		id, name := o.ID, o.Name
		s.ov.ask(fmt.Sprintf("Delete organization %q? Its things become unassigned.", name), func(a core.Actor) (string, error) {
			if err := e.core.DeleteOrg(e.ctx, a, id); err != nil {
				return "", err
			}
			return "deleted organization " + name, nil
		})
		return nil
	}
	return nil
}

func (s *orgsScreen) memberKey(k tea.KeyPressMsg) tea.Cmd {
	if used, cmd := s.members.update(k, 10); used {
		return cmd
	}
	e := s.env
	o, ok := s.orgs[s.open]
	if !ok {
		s.open = ""
		return nil
	}
	if cmd, ok := s.detailKey(k, o); ok {
		return cmd
	}
	switch {
	case key.Matches(k, keyListBack):
		s.open = ""
		return nil
	case key.Matches(k, keyAddMem):
		if err := core.AuthorizeAdmin(e.actor, core.ActAddMember); err != nil {
			return e.refuse(err)
		}
		in := map[core.ID]bool{}
		for _, u := range s.detail.users {
			in[u.ID] = true
		}
		var values []string
		for _, u := range s.users {
			if !in[u.ID] {
				values = append(values, u.ID.Hex())
			}
		}
		if len(values) == 0 {
			return func() tea.Msg { return statusMsg{text: "every user is already a member"} }
		}
		labels := make([]string, len(values))
		for i, v := range values {
			for _, u := range s.users {
				if u.ID.Hex() == v {
					labels[i] = u.Email
				}
			}
		}
		f := newForm("Add a member to "+o.Name).pick("user", "User", values, labels, "")
		orgID, name := o.ID, o.Name
		return s.ov.open(f, func(a core.Actor, f *form) (string, error) {
			uid, err := core.ParseID(f.value("user"))
			if err != nil {
				return "", err
			}
			if err := e.core.AddOrgUser(e.ctx, a, orgID, uid); err != nil {
				return "", err
			}
			return "added a member to " + name, nil
		})
	case key.Matches(k, keyDelMem):
		if err := core.AuthorizeAdmin(e.actor, core.ActRemoveMember); err != nil {
			return e.refuse(err)
		}
		r, ok := s.members.selected()
		if !ok {
			return nil
		}
		uid, err := core.ParseID(r.key)
		if err != nil {
			return nil
		}
		orgID, name, email := o.ID, o.Name, r.cells[0]
		s.ov.ask(fmt.Sprintf("Remove %s from %s?", email, name), func(a core.Actor) (string, error) {
			if err := e.core.RemoveOrgUser(e.ctx, a, orgID, uid); err != nil {
				return "", err
			}
			return fmt.Sprintf("removed %s from %s", email, name), nil
		})
	}
	return nil
}

func (s *orgsScreen) view(width, height int) string {
	if s.ov.form != nil || s.ov.shown != nil {
		return s.ov.view(width, height)
	}
	if !s.loaded {
		return styleDim.Render("loading…")
	}
	bodyH := height
	if s.ov.confirm != nil {
		bodyH--
	}
	var body string
	if s.open != "" {
		head := s.detailHead(s.orgs[s.open], width)
		body = head + s.members.view(width, bodyH-lipgloss.Height(head)+1)
	} else {
		hint := "* marks the organization you work in"
		body = styleDim.Render(cut(fmt.Sprintf("%d organizations · %s", s.list.len(), hint), width)) + "\n" + s.list.view(width, bodyH-1)
	}
	if s.ov.confirm != nil {
		return fitLines(body, width, bodyH) + "\n" + s.ov.confirm.view(width)
	}
	return body
}
