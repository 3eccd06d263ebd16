package tui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/piot-appliance/piot/services/core"
)

// clientsScreen is the Clients view, opened with C from the Live screen
// (ten tabs fill 80 columns): the connected MQTT clients, the persistent
// sessions kept for offline clients, and the retained messages, each a
// list; enter shows one whole, d disconnects a client or deletes a
// session or message. What a member sees and may do is decided by core
// through Deps.Clients.
type clientsScreen struct {
	env      *env
	ov       overlay
	tab      int // index into clientsTabs
	lists    [3]*list
	clients  map[string]MQTTClient // by session
	retained map[string]RetainedMessage
	loaded   bool
	refused  string
	open     string // key of the item shown whole
}

// The three lists of the view.
const (
	clientsConnected = iota
	clientsSessions
	clientsRetained
)

var clientsTabs = [3]string{"Connected", "Sessions", "Retained"}

type clientsMsg struct {
	clients  []MQTTClient
	retained []RetainedMessage
	refused  string
}

// popMsg closes the view shown over the active tab.
type popMsg struct{}

// pushMsg shows a view over the active tab; esc in it sends popMsg.
type pushMsg struct{ s screen }

// keyLiveClients opens the view from the Live screen.
var keyLiveClients = key.NewBinding(key.WithKeys("C"), key.WithHelp("C", "clients"))

var (
	keyClientsNext   = key.NewBinding(key.WithKeys("tab", "s"), key.WithHelp("tab/s", "next list"))
	keyClientsOpen   = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "details"))
	keyClientsDelete = key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "disconnect/delete"))
	keyClientsBack   = key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back"))
)

// openClients is the Live screen's way into the view.
func openClients(e *env) tea.Cmd {
	s := newClients(e)
	return func() tea.Msg { return pushMsg{s: s} }
}

func newClients(e *env) *clientsScreen {
	s := &clientsScreen{env: e, ov: overlay{tag: "clients", env: e}}
	s.lists[clientsConnected] = newList([]column{
		{title: "Client ID", width: 10, flex: 2},
		{title: "Org", width: 6, flex: 1},
		{title: "Identity", width: 9, flex: 2, drop: 2},
		{title: "From", width: 15, drop: 1},
		{title: "MQTT", width: 5},
		{title: "Since", width: 7},
		{title: "Subs", width: 4, right: true},
		{title: "Infl/Queue", width: 10, right: true, drop: 3},
	}, "no client connected")
	s.lists[clientsSessions] = newList([]column{
		{title: "Client ID", width: 10, flex: 2},
		{title: "Org", width: 6, flex: 1},
		{title: "Identity", width: 9, flex: 2, drop: 2},
		{title: "MQTT", width: 5},
		{title: "Offline", width: 7},
		{title: "Expires", width: 7, drop: 1},
		{title: "Subs", width: 4, right: true},
		{title: "Kept", width: 4, right: true},
	}, "no persistent session kept for an offline client")
	s.lists[clientsRetained] = newList([]column{
		{title: "Topic", width: 20, flex: 3},
		{title: "Org", width: 6, flex: 1},
		{title: "Size", width: 7, right: true},
		{title: "QoS", width: 3, right: true},
		{title: "Received", width: 8, drop: 1},
	}, "no retained message")
	return s
}

func (s *clientsScreen) title() string   { return "Clients" }
func (s *clientsScreen) adminOnly() bool { return false }
func (s *clientsScreen) capturing() bool {
	return s.lists[s.tab].capturing() || s.ov.active()
}

func (s *clientsScreen) keys() []key.Binding {
	if s.open != "" {
		return []key.Binding{keyClientsDelete, keyClientsBack}
	}
	return append([]key.Binding{keyClientsNext, keyClientsOpen, keyClientsDelete, keyClientsBack}, s.lists[s.tab].keys()...)
}

func (s *clientsScreen) refresh() tea.Cmd {
	e := s.env
	if e.deps.Clients == nil {
		return nil
	}
	return func() tea.Msg {
		a, err := e.who()
		if err != nil {
			return endMsg{reason: err.Error()}
		}
		cs, err := e.deps.Clients.Clients(e.ctx, a)
		if err != nil {
			return clientsMsg{refused: refusal(err, a)}
		}
		rs, err := e.deps.Clients.Retained(e.ctx, a)
		if err != nil {
			return clientsMsg{refused: refusal(err, a)}
		}
		return clientsMsg{clients: cs, retained: rs}
	}
}

// refusal is the text of an error that replaces the view: core's message,
// or the appliance's own error for admins only.
func refusal(err error, a core.Actor) string {
	if core.CodeOf(err) != core.CodeInternal || a.IsAdministrator() {
		return core.Message(err)
	}
	return "internal error"
}

func (s *clientsScreen) update(msg tea.Msg) tea.Cmd {
	if handled, cmd := s.ov.update(msg); handled {
		return cmd
	} else if d, ok := msg.(doneMsg); ok && d.tag == s.ov.tag {
		return tea.Batch(cmd, s.refresh())
	}
	switch msg := msg.(type) {
	case clientsMsg:
		s.loaded, s.refused = true, msg.refused
		s.fill(msg.clients, msg.retained)
	case tea.KeyPressMsg:
		return s.key(msg)
	case tea.PasteMsg:
		_, cmd := s.lists[s.tab].update(msg, 10)
		return cmd
	}
	return nil
}

// fill shows the loaded clients and messages in the three lists.
func (s *clientsScreen) fill(cs []MQTTClient, rs []RetainedMessage) {
	now := s.env.now()
	s.clients = make(map[string]MQTTClient, len(cs))
	var online, offline []row
	for _, c := range cs {
		s.clients[c.Session] = c
		id, org, who := printable(c.ClientID), printable(orDash(c.Org)), printable(identityOf(c))
		subs := fmt.Sprint(len(c.Subscriptions))
		if c.Connected {
			online = append(online, row{key: c.Session, cells: []string{
				id, org, who, printable(c.Remote), c.Protocol, sinceText(now, c.Since), subs,
				fmt.Sprintf("%d/%s", c.Inflight, bytesText(c.QueuedBytes)),
			}})
		} else {
			offline = append(offline, row{key: c.Session, cells: []string{
				id, org, who, c.Protocol, sinceText(now, c.Since), untilText(now, c.Expires), subs, fmt.Sprint(c.Inflight),
			}})
		}
	}
	s.lists[clientsConnected].setRows(online)
	s.lists[clientsSessions].setRows(offline)

	s.retained = make(map[string]RetainedMessage, len(rs))
	rows := make([]row, 0, len(rs))
	for _, m := range rs {
		s.retained[m.Topic] = m
		rows = append(rows, row{key: m.Topic, cells: []string{
			printable(m.Topic), printable(orDash(m.Org)), bytesText(len(m.Payload)), fmt.Sprint(m.QoS), sinceText(now, m.Created),
		}})
	}
	s.lists[clientsRetained].setRows(rows)
	if s.open != "" && !s.has(s.open) {
		s.open = ""
	}
}

// has reports whether the current list holds the item of key k.
func (s *clientsScreen) has(k string) bool {
	if s.tab == clientsRetained {
		_, ok := s.retained[k]
		return ok
	}
	c, ok := s.clients[k]
	return ok && c.Connected == (s.tab == clientsConnected)
}

// identityOf names the credentials a client logged in with.
func identityOf(c MQTTClient) string {
	switch {
	case c.Thing != "":
		return c.Username + " (device " + c.Thing + ")"
	case c.Org == "":
		return c.Username + " (monitor)"
	}
	return c.Username
}

func sinceText(now, t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return ago(now, t.Unix())
}

func untilText(now, t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	d := t.Sub(now)
	if d <= 0 {
		return "now"
	}
	return "in " + strings.Fields(duration(d))[0]
}

// bytesText is a byte count in B, kB or MB.
func bytesText(n int) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d B", n)
	case n < 1000_000:
		return fmt.Sprintf("%.1f kB", float64(n)/1000)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1000_000)
}

func (s *clientsScreen) key(k tea.KeyPressMsg) tea.Cmd {
	if s.open != "" {
		switch {
		case key.Matches(k, keyClientsBack), k.String() == "enter":
			s.open = ""
		case key.Matches(k, keyClientsDelete):
			return s.ask(s.open)
		}
		return nil
	}
	l := s.lists[s.tab]
	if l.capturing() {
		_, cmd := l.update(k, 10)
		return cmd
	}
	switch {
	case key.Matches(k, keyClientsNext):
		s.tab = (s.tab + 1) % len(s.lists)
		return nil
	case key.Matches(k, keyClientsBack) && l.filter.Value() == "":
		return func() tea.Msg { return popMsg{} }
	case key.Matches(k, keyClientsOpen):
		if r, ok := l.selected(); ok {
			s.open = r.key
		}
		return nil
	case key.Matches(k, keyClientsDelete):
		if r, ok := l.selected(); ok {
			return s.ask(r.key)
		}
		return nil
	}
	_, cmd := l.update(k, 10)
	return cmd
}

// ask confirms the current list's action on the item of key k.
func (s *clientsScreen) ask(k string) tea.Cmd {
	e := s.env
	if e.deps.Clients == nil {
		return nil
	}
	switch s.tab {
	case clientsConnected:
		c := s.clients[k]
		s.ov.ask(fmt.Sprintf("Disconnect client %q of %s?", c.ClientID, orDash(c.Org)), func(a core.Actor) (string, error) {
			if err := e.deps.Clients.Disconnect(e.ctx, a, k); err != nil {
				return "", err
			}
			return "disconnected " + c.ClientID, nil
		})
	case clientsSessions:
		c := s.clients[k]
		s.ov.ask(fmt.Sprintf("Delete the session of %q with its subscriptions and %d kept messages?", c.ClientID, c.Inflight), func(a core.Actor) (string, error) {
			if err := e.deps.Clients.DeleteSession(e.ctx, a, k); err != nil {
				return "", err
			}
			return "deleted the session of " + c.ClientID, nil
		})
	default:
		s.ov.ask(fmt.Sprintf("Delete the retained message of %s?", k), func(a core.Actor) (string, error) {
			if err := e.deps.Clients.DeleteRetained(e.ctx, a, k); err != nil {
				return "", err
			}
			return "deleted the retained message of " + k, nil
		})
	}
	return nil
}

func (s *clientsScreen) view(width, height int) string {
	switch {
	case s.env.deps.Clients == nil:
		return "MQTT clients are not available: the broker is not connected to the console."
	case !s.loaded:
		return styleDim.Render("loading…")
	case s.refused != "":
		return styleErr.Render(cut(s.refused, width))
	}
	bodyH := height
	if s.ov.confirm != nil {
		bodyH--
	}
	var body string
	if s.open != "" {
		body = s.detail(width)
	} else {
		var tabs []string
		for i, name := range clientsTabs {
			label := fmt.Sprintf("%s (%d)", name, s.lists[i].len())
			if i == s.tab {
				label = styleTabOn.Render("[" + label + "]")
			}
			tabs = append(tabs, label)
		}
		head := cut(styleTitle.Render("MQTT")+" "+strings.Join(tabs, " "), width)
		body = head + "\n" + s.lists[s.tab].view(width, max(bodyH-1, 1))
	}
	if s.ov.confirm != nil {
		return fitLines(body, width, bodyH) + "\n" + s.ov.confirm.view(width)
	}
	return body
}

// detail shows the open client, session or retained message whole.
func (s *clientsScreen) detail(width int) string {
	now := s.env.now()
	var fields [][2]string
	var tail []string
	if s.tab == clientsRetained {
		m := s.retained[s.open]
		received := "unknown"
		if !m.Created.IsZero() {
			received = m.Created.UTC().Format("2006-01-02 15:04:05 UTC") + " (" + sinceText(now, m.Created) + ")"
		}
		fields = [][2]string{
			{"topic", m.Topic}, {"org", orDash(m.Org)}, {"size", bytesText(len(m.Payload))},
			{"QoS", fmt.Sprint(m.QoS)}, {"received", received},
		}
		tail = []string{"payload:", payloadText(m.Payload, max(width*4, 40))}
	} else {
		c := s.clients[s.open]
		state := "connected " + sinceText(now, c.Since)
		if !c.Connected {
			state = "offline " + sinceText(now, c.Since) + ", dropped " + untilText(now, c.Expires)
		}
		session := "ends with the connection"
		if c.Persistent {
			session = "persistent"
		}
		fields = [][2]string{
			{"client ID", c.ClientID}, {"org", orDash(c.Org)}, {"identity", identityOf(c)},
			{"from", orDash(c.Remote) + " (" + orDash(c.Listener) + ")"}, {"MQTT", c.Protocol},
			{"state", state}, {"session", session},
			{"inflight", fmt.Sprintf("%d messages, %s queued", c.Inflight, bytesText(c.QueuedBytes))},
		}
		tail = []string{fmt.Sprintf("subscriptions (%d):", len(c.Subscriptions))}
		for _, sub := range c.Subscriptions {
			tail = append(tail, fmt.Sprintf("  %s  QoS %d", printable(sub.Filter), sub.QoS))
		}
	}
	var b strings.Builder
	b.WriteString(styleTitle.Render(cut(clientsTabs[s.tab]+" — "+printable(s.open), width)) + "\n")
	for _, f := range fields {
		b.WriteString(ansi.Wrap(pad(f[0], 9)+" "+printable(f[1]), max(width, 1), " ") + "\n")
	}
	for _, l := range tail {
		b.WriteString(ansi.Wrap(l, max(width, 1), " ") + "\n")
	}
	b.WriteString(styleDim.Render(cut("d "+clientsAction[s.tab]+" • esc or enter closes", width)))
	return b.String()
}

// clientsAction is what d does in each list.
var clientsAction = [3]string{"disconnect", "delete the session", "delete the message"}
