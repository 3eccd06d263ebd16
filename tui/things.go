package tui

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/piot-appliance/piot/services/core"
)

// thingsScreen lists things and shows one in detail, grouped like the
// original manager's tabs.
type thingsScreen struct {
	env    *env
	list   *list
	ov     overlay
	items  map[string]core.Thing
	orgs   []core.Org
	loaded bool

	detail string // hex id of the thing shown, empty for the list
	group  int
	// trail holds the details left by following links, so esc walks
	// back through them before returning to the list.
	trail []string
	// link is the chosen one of the detail's linked things.
	link int
	// pending is a thing to open once the list has it (an alarm opened
	// before the list was loaded).
	pending    string
	history    []float64
	historyFor string
	historyErr string
}

type thingsMsg struct {
	things []core.Thing
	orgs   []core.Org
}

type thingHistoryMsg struct {
	id     string
	values []float64
	err    string
}

var thingGroups = []string{"general", "MQTT", "sensor", "switch", "location", "battery"}

var (
	keyOpen     = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "details"))
	keyNew      = key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "new"))
	keyEdit     = key.NewBinding(key.WithKeys("e"), key.WithHelp("e", "edit"))
	keyDelete   = key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "delete"))
	keyAssign   = key.NewBinding(key.WithKeys("o"), key.WithHelp("o", "assign org"))
	keyEnable   = key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "enable/disable"))
	keyToggle   = key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "toggle switch"))
	keyGroupL   = key.NewBinding(key.WithKeys("left", "h"), key.WithHelp("←/→", "settings group"))
	keyGroupR   = key.NewBinding(key.WithKeys("right", "l"))
	keyListBack = key.NewBinding(key.WithKeys("esc", "backspace"), key.WithHelp("esc", "back to list"))
	keyHistory  = key.NewBinding(key.WithKeys("H"), key.WithHelp("H", "history"))
	keyLinkPick = key.NewBinding(key.WithKeys("up", "down", "k", "j"), key.WithHelp("↑/↓", "choose link"))
	keyLinkOpen = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open link"))
)

// openThingMsg asks for the Things screen with a thing's detail (enter on
// an alarm).
type openThingMsg struct{ thing string }

func newThings(e *env) *thingsScreen {
	l := newList([]column{
		{title: "Name", width: 10, flex: 2},
		{title: "Alias", width: 8, flex: 1, drop: 3},
		{title: "Type", width: 6, drop: 5},
		{title: "Org", width: 8, flex: 1, drop: 2},
		{title: "Last seen", width: 10},
		{title: "Value", width: 10, right: true, drop: 1},
		{title: "Batt", width: 4, right: true, drop: 4},
		{title: "On", width: 3},
	}, "no things")
	l.sortable = true
	return &thingsScreen{env: e, list: l, ov: overlay{tag: "things", env: e}, items: map[string]core.Thing{}}
}

func (s *thingsScreen) title() string   { return "Things" }
func (s *thingsScreen) adminOnly() bool { return false }
func (s *thingsScreen) capturing() bool { return s.ov.active() || s.list.capturing() }

func (s *thingsScreen) keys() []key.Binding {
	admin := s.env.actor.IsAdministrator()
	var ks []key.Binding
	if s.detail != "" {
		if len(s.links()) > 0 {
			ks = append(ks, keyLinkPick, keyLinkOpen)
		}
		ks = append(ks, keyGroupL, keyHistory, keyEdit, keyListBack)
		if t, ok := s.items[s.detail]; ok {
			ks = append(ks, deviceSecretKeys(t, admin)...)
		}
	} else {
		ks = append(ks, keyOpen, keyHistory, keyEdit)
	}
	if admin {
		ks = append(ks, keyNew, keyAssign)
	}
	ks = append(ks, keyEnable, keyToggle)
	if admin {
		ks = append(ks, keyDelete)
	}
	if s.detail == "" {
		ks = append(ks, s.list.keys()...)
	}
	return ks
}

func (s *thingsScreen) refresh() tea.Cmd {
	e := s.env
	cmds := []tea.Cmd{e.run(func(a core.Actor) (tea.Msg, error) {
		page, err := e.core.Things(a, core.ThingQuery{All: a.IsAdministrator(), SortBy: "name", SortSet: true})
		if err != nil {
			return nil, err
		}
		orgs, err := e.core.Orgs(a)
		if err != nil {
			return nil, err
		}
		return thingsMsg{things: page.Items, orgs: orgs}, nil
	})}
	if s.detail != "" {
		cmds = append(cmds, s.loadHistory(s.detail))
	}
	return tea.Batch(cmds...)
}

func (s *thingsScreen) loadHistory(hex string) tea.Cmd {
	e := s.env
	t, ok := s.items[hex]
	if !ok {
		return nil
	}
	if e.deps.History == nil {
		return func() tea.Msg { return thingHistoryMsg{id: hex, err: "history not available"} }
	}
	kind := "sensor"
	switch t.Type {
	case "switch":
		kind = "switch"
	case "device":
		kind = "battery"
	}
	return func() tea.Msg {
		a, err := e.who()
		if err != nil {
			return endMsg{reason: err.Error()}
		}
		v, err := e.deps.History.Recent(e.ctx, a, t.ID, kind, 24*time.Hour, 120)
		if err != nil {
			return thingHistoryMsg{id: hex, err: core.Message(err)}
		}
		return thingHistoryMsg{id: hex, values: v}
	}
}

func (s *thingsScreen) orgName(id core.ID) string {
	if id.IsZero() {
		return ""
	}
	for _, o := range s.orgs {
		if o.ID == id {
			return o.Name
		}
	}
	if n, ok := s.env.core.OrgNameOf(id); ok {
		return n
	}
	return id.Hex()
}

func (s *thingsScreen) update(msg tea.Msg) tea.Cmd {
	if handled, cmd := s.ov.update(msg); handled {
		return cmd
	} else if d, ok := msg.(doneMsg); ok && d.tag == s.ov.tag {
		return tea.Batch(cmd, s.refresh())
	}
	switch msg := msg.(type) {
	case thingsMsg:
		s.loaded = true
		s.orgs = msg.orgs
		s.items = make(map[string]core.Thing, len(msg.things))
		rows := make([]row, 0, len(msg.things))
		for _, t := range msg.things {
			s.items[t.ID.Hex()] = t
			rows = append(rows, s.row(t))
		}
		s.list.setRows(rows)
		if s.pending != "" {
			id := s.pending
			s.pending = ""
			if _, ok := s.items[id]; !ok {
				return s.notListed()
			}
			return s.show(id, false)
		}
		if s.detail != "" {
			t, ok := s.items[s.detail]
			if !ok {
				s.detail, s.trail = "", nil
				return func() tea.Msg { return statusMsg{text: "the thing is gone (deleted or moved out of your org)"} }
			}
			if !groupApplies(t, s.group) { // its type was changed
				s.group = 0
			}
		}
		return nil
	case thingHistoryMsg:
		s.historyFor, s.history, s.historyErr = msg.id, msg.values, msg.err
		return nil
	case tea.KeyPressMsg:
		return s.key(msg)
	}
	return nil
}

func (s *thingsScreen) row(t core.Thing) row {
	now := s.env.now()
	seen := ago(now, t.LastSeen)
	seenStyle := styleDim
	if t.LastSeen > 0 {
		seenStyle = lipgloss.NewStyle()
		if t.LastSeenInterval > 0 {
			age := now.Unix() - t.LastSeen
			switch {
			case age <= t.LastSeenInterval:
				seenStyle = styleOK
			case age <= 2*t.LastSeenInterval:
				seenStyle = styleWarn
			default:
				seenStyle = styleErr
			}
		}
	}
	value := thingValue(t)
	batt := "–"
	if t.BatteryLevelTracking {
		batt = fmt.Sprintf("%d%%", t.BatteryLevel)
	}
	plain := lipgloss.NewStyle()
	enabledStyle := plain
	if !t.Enabled {
		enabledStyle = styleDim
	}
	return row{
		key:    t.ID.Hex(),
		cells:  []string{t.Name, t.Alias, t.Type, s.orgName(t.OrgID), seen, value, batt, onOff(t.Enabled)},
		styles: []lipgloss.Style{plain, plain, plain, plain, seenStyle, plain, plain, enabledStyle},
		sort:   []string{"", "", "", "", fmt.Sprintf("%020d", t.LastSeen), "", fmt.Sprintf("%04d", t.BatteryLevel), ""},
	}
}

// thingValue is the last reading as the list shows it.
func thingValue(t core.Thing) string {
	switch t.Type {
	case "sensor":
		if t.Sensor.Value == "" {
			return "–"
		}
		return strings.TrimSpace(t.Sensor.Value + " " + t.Sensor.Unit)
	case "switch":
		if t.Switch.State {
			return "ON"
		}
		return "OFF"
	default:
		if t.LastSeen == 0 {
			return "–"
		}
		if t.Available {
			return "online"
		}
		return "offline"
	}
}

// showWhenListed opens a thing's detail now if the list has it, else when
// the list (being refreshed by the switch to this screen) arrives.
func (s *thingsScreen) showWhenListed(id string) tea.Cmd {
	if _, ok := s.items[id]; ok {
		return s.show(id, false)
	}
	s.pending = id
	return nil
}

// show opens a thing's detail and selects its row, so the list is where
// the user left it when they go back. keepTrail keeps the way back through
// followed links; anything else starts a new one.
func (s *thingsScreen) show(id string, keepTrail bool) tea.Cmd {
	if !keepTrail {
		s.trail = nil
	}
	s.list.selectKey(id)
	s.detail, s.group, s.link = id, 0, 0
	s.history, s.historyErr = nil, ""
	return s.loadHistory(id)
}

// notListed says why an alarm's thing cannot be shown: core lists a
// member the things of the active organization only.
func (s *thingsScreen) notListed() tea.Cmd {
	text := "the alarm's thing is no longer listed (deleted?)"
	if !s.env.actor.IsAdministrator() {
		text = "the alarm's thing is not in your active organization: switch it on the Orgs screen"
	}
	return func() tea.Msg { return statusMsg{text: text, err: true} }
}

// links are the things linked to the one in detail: its parent, then its
// children by name. Only things core listed are linked, so a parent in an
// organization the user cannot see stays hidden.
func (s *thingsScreen) links() []core.Thing {
	t, ok := s.items[s.detail]
	if !ok {
		return nil
	}
	var ls []core.Thing
	if p, ok := s.items[t.ParentID.Hex()]; ok && !t.ParentID.IsZero() {
		ls = append(ls, p)
	}
	var children []core.Thing
	for _, c := range s.items {
		if c.ParentID == t.ID {
			children = append(children, c)
		}
	}
	slices.SortFunc(children, func(a, b core.Thing) int { return strings.Compare(a.Name, b.Name) })
	return append(ls, children...)
}

// groupApplies reports whether a settings group means anything for the
// thing: sensor settings only on sensors, switch settings only on switches.
func groupApplies(t core.Thing, group int) bool {
	switch thingGroups[group] {
	case "sensor":
		return t.Type == "sensor"
	case "switch":
		return t.Type == "switch"
	}
	return true
}

// nextGroup is the next settings group in direction dir that applies.
func (s *thingsScreen) nextGroup(t core.Thing, dir int) int {
	n := len(thingGroups)
	g := s.group
	for range n {
		g = (g + dir + n) % n
		if groupApplies(t, g) {
			return g
		}
	}
	return 0
}

// current is the thing the keys act on: the one in detail, else the
// selected row.
func (s *thingsScreen) current() (core.Thing, bool) {
	if s.detail != "" {
		t, ok := s.items[s.detail]
		return t, ok
	}
	r, ok := s.list.selected()
	if !ok {
		return core.Thing{}, false
	}
	t, ok := s.items[r.key]
	return t, ok
}

func (s *thingsScreen) key(k tea.KeyPressMsg) tea.Cmd {
	e := s.env
	if s.detail == "" {
		if used, cmd := s.list.update(k, 10); used {
			return cmd
		}
	}
	t, have := s.current()
	if s.detail != "" && have {
		if cmd, ok := s.secretKey(k, t); ok {
			return cmd
		}
	}
	switch {
	case s.detail != "" && key.Matches(k, keyListBack):
		if n := len(s.trail); n > 0 {
			back := s.trail[n-1]
			s.trail = s.trail[:n-1]
			return s.show(back, true)
		}
		s.detail = ""
		return nil
	case s.detail != "" && key.Matches(k, keyGroupL):
		s.group = s.nextGroup(t, -1)
		return nil
	case s.detail != "" && key.Matches(k, keyGroupR):
		s.group = s.nextGroup(t, 1)
		return nil
	case s.detail != "" && key.Matches(k, keyLinkPick):
		if n := len(s.links()); n > 0 {
			dir := 1
			if k.String() == "up" || k.String() == "k" {
				dir = -1
			}
			s.link = (s.link + dir + n) % n
		}
		return nil
	case s.detail != "" && key.Matches(k, keyLinkOpen):
		ls := s.links()
		if s.link >= len(ls) {
			return nil
		}
		s.trail = append(s.trail, s.detail)
		return s.show(ls[s.link].ID.Hex(), true)
	case key.Matches(k, keyHistory) && have:
		id := t.ID.Hex()
		return func() tea.Msg { return openHistoryMsg{thing: id} }
	case s.detail == "" && key.Matches(k, keyOpen) && have:
		return s.show(t.ID.Hex(), false)
	case key.Matches(k, keyNew):
		if err := core.AuthorizeAdmin(e.actor, core.ActCreateThing); err != nil {
			return e.refuse(err)
		}
		f := newForm("New thing").
			text("name", "Name", "", "thing name", "thing of such name").
			pick("type", "Type", []string{"device", "sensor", "switch"}, nil, "sensor", "thing type")
		f.note = "New things start unassigned and disabled."
		return s.ov.open(f, func(a core.Actor, f *form) (string, error) {
			t, err := e.core.CreateThing(e.ctx, a, strings.TrimSpace(f.value("name")), f.value("type"))
			if err != nil {
				return "", err
			}
			return "created thing " + t.Name, nil
		})
	case !have:
		return nil
	case key.Matches(k, keyEdit):
		group := 0
		if s.detail != "" {
			group = s.group
		}
		return s.edit(t, group)
	case key.Matches(k, keyAssign):
		if err := core.AuthorizeAdmin(e.actor, core.ActAssignThing); err != nil {
			return e.refuse(err)
		}
		values, labels := []string{""}, []string{"(none: unassigned)"}
		for _, o := range s.orgs {
			values = append(values, o.ID.Hex())
			labels = append(labels, o.Name)
		}
		cur := ""
		if !t.OrgID.IsZero() {
			cur = t.OrgID.Hex()
		}
		f := newForm("Assign "+t.Name+" to an organization").
			pick("org", "Organization", values, labels, cur, "organization")
		f.note = "←/→ or space choose; things of no org are not processed."
		id := t.ID
		return s.ov.open(f, func(a core.Actor, f *form) (string, error) {
			var org core.ID
			if v := f.value("org"); v != "" {
				var err error
				if org, err = core.ParseID(v); err != nil {
					return "", err
				}
			}
			n, err := e.core.UpdateThing(e.ctx, a, core.ThingUpdate{ID: id, SetOrg: true, OrgID: org})
			if err != nil {
				return "", err
			}
			if org.IsZero() {
				return n.Name + " is now unassigned", nil
			}
			name, _ := e.core.OrgNameOf(org)
			return fmt.Sprintf("%s assigned to %s", n.Name, name), nil
		})
	case key.Matches(k, keyEnable):
		id, on := t.ID, !t.Enabled
		return s.ov.exec(func(a core.Actor) (string, error) {
			n, err := e.core.UpdateThing(e.ctx, a, core.ThingUpdate{ID: id, Enabled: &on})
			if err != nil {
				return "", err
			}
			if n.Enabled {
				return n.Name + " enabled", nil
			}
			return n.Name + " disabled", nil
		}, nil)
	case key.Matches(k, keyToggle):
		if t.Type != "switch" {
			return func() tea.Msg { return statusMsg{text: t.Name + " is not a switch", err: true} }
		}
		id, on := t.ID, !t.Switch.State
		return s.ov.exec(func(a core.Actor) (string, error) {
			n, err := e.core.SetSwitchState(e.ctx, a, id, on)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%s switched %s", n.Name, thingValue(n)), nil
		}, nil)
	case key.Matches(k, keyDelete):
		if err := core.AuthorizeAdmin(e.actor, core.ActDeleteThing); err != nil {
			return e.refuse(err)
		}
		id, name := t.ID, t.Name
		s.ov.ask(fmt.Sprintf("Delete thing %q? Its children lose their parent.", name), func(a core.Actor) (string, error) {
			if err := e.core.DeleteThing(e.ctx, a, id); err != nil {
				return "", err
			}
			return "deleted thing " + name, nil
		})
		return nil
	}
	return nil
}

// edit opens the form of one settings group.
func (s *thingsScreen) edit(t core.Thing, group int) tea.Cmd {
	e := s.env
	id := t.ID
	title := fmt.Sprintf("Edit %s — %s", t.Name, thingGroups[group])
	f := newForm(title)
	var save func(a core.Actor, f *form) (string, error)
	update := func(a core.Actor, u core.ThingUpdate) (string, error) {
		u.ID = id
		n, err := e.core.UpdateThing(e.ctx, a, u)
		if err != nil {
			return "", err
		}
		return "saved " + n.Name, nil
	}
	switch group {
	case 0:
		f.text("name", "Name", t.Name, "thing name", "thing of such name").
			text("alias", "Alias", t.Alias, "alias").
			text("description", "Description", t.Description, "description").
			pick("type", "Type", []string{"device", "sensor", "switch"}, nil, t.Type, "thing type").
			text("piot_id", "PIOT chip id", t.PiotID, "piotId", "piot_id").
			boolean("enabled", "Enabled", t.Enabled).
			integer("last_seen_interval", "Last seen interval (s)", t.LastSeenInterval, "last_seen_interval").
			float("voltage", "Voltage", t.Voltage, "voltage")
		save = func(a core.Actor, f *form) (string, error) {
			return update(a, core.ThingUpdate{
				Name: f.str("name"), Alias: f.str("alias"), Description: f.str("description"),
				Type: f.str("type"), PiotID: f.str("piot_id"), Enabled: f.flag("enabled"),
				LastSeenInterval: f.int64("last_seen_interval"), Voltage: f.float64("voltage"),
			})
		}
	case 1:
		f.text("availability_topic", "Availability topic", t.AvailabilityTopic, "availability_topic").
			text("telemetry_topic", "Telemetry topic", t.TelemetryTopic, "telemetry_topic").
			boolean("store_influxdb", "Store in InfluxDB", t.StoreInfluxDB).
			boolean("store_mysqldb", "Store in MySQL", t.StoreMySQLDB).
			integer("store_mysqldb_interval", "MySQL interval (s)", t.StoreMySQLDBInterval, "store_mysqldb_interval")
		f.note = "Topics are relative to org/<org>/."
		save = func(a core.Actor, f *form) (string, error) {
			return update(a, core.ThingUpdate{
				AvailabilityTopic: f.str("availability_topic"), TelemetryTopic: f.str("telemetry_topic"),
				StoreInfluxDB: f.flag("store_influxdb"), StoreMySQLDB: f.flag("store_mysqldb"),
				StoreMySQLDBInterval: f.int64("store_mysqldb_interval"),
			})
		}
	case 2:
		f.text("class", "Class", t.Sensor.Class, "sensor.class").
			text("unit", "Unit", t.Sensor.Unit, "sensor.unit").
			text("measurement_topic", "Measurement topic", t.Sensor.MeasurementTopic, "sensor.measurement_topic").
			text("measurement_value", "Value path", t.Sensor.MeasurementValue, "sensor.measurement_value")
		f.note = "The value path selects the reading in a JSON payload (empty: the payload itself)."
		save = func(a core.Actor, f *form) (string, error) {
			n, err := e.core.UpdateThingSensor(e.ctx, a, core.SensorUpdate{ID: id,
				Class: f.str("class"), Unit: f.str("unit"),
				MeasurementTopic: f.str("measurement_topic"), MeasurementValue: f.str("measurement_value")})
			if err != nil {
				return "", err
			}
			return "saved " + n.Name, nil
		}
	case 3:
		f.text("state_topic", "State topic", t.Switch.StateTopic, "switch.state_topic").
			text("state_on", "State on", t.Switch.StateOn, "switch.state_on").
			text("state_off", "State off", t.Switch.StateOff, "switch.state_off").
			text("command_topic", "Command topic", t.Switch.CommandTopic, "switch.command_topic").
			text("command_on", "Command on", t.Switch.CommandOn, "switch.command_on").
			text("command_off", "Command off", t.Switch.CommandOff, "switch.command_off")
		save = func(a core.Actor, f *form) (string, error) {
			n, err := e.core.UpdateThingSwitch(e.ctx, a, core.SwitchUpdate{ID: id,
				StateTopic: f.str("state_topic"), StateOn: f.str("state_on"), StateOff: f.str("state_off"),
				CommandTopic: f.str("command_topic"), CommandOn: f.str("command_on"), CommandOff: f.str("command_off")})
			if err != nil {
				return "", err
			}
			return "saved " + n.Name, nil
		}
	case 4:
		f.float("lat", "Latitude", t.LocLat, "location_lat").
			float("lng", "Longitude", t.LocLng, "location_lng").
			boolean("tracking", "Track from MQTT", t.LocTracking).
			text("topic", "Location topic", t.LocMQTTTopic, "location_mqtt_topic").
			text("lat_value", "Latitude path", t.LocMQTTLatValue, "location_mqtt_lat_value").
			text("lng_value", "Longitude path", t.LocMQTTLngValue, "location_mqtt_lng_value").
			text("sat_value", "Satellites path", t.LocMQTTSatValue, "location_mqtt_sat_value").
			text("ts_value", "Timestamp path", t.LocMQTTTsValue, "location_mqtt_ts_value")
		save = func(a core.Actor, f *form) (string, error) {
			return update(a, core.ThingUpdate{
				LocLat: f.float64("lat"), LocLng: f.float64("lng"), LocTracking: f.flag("tracking"),
				LocMQTTTopic: f.str("topic"), LocMQTTLatValue: f.str("lat_value"), LocMQTTLngValue: f.str("lng_value"),
				LocMQTTSatValue: f.str("sat_value"), LocMQTTTsValue: f.str("ts_value"),
			})
		}
	default:
		f.boolean("tracking", "Track battery level", t.BatteryLevelTracking).
			text("topic", "Battery topic", t.BatteryMQTTTopic, "battery_mqtt_topic").
			text("level_value", "Level path", t.BatteryMQTTLevelValue, "battery_mqtt_level_value")
		save = func(a core.Actor, f *form) (string, error) {
			return update(a, core.ThingUpdate{
				BatteryLevelTracking: f.flag("tracking"), BatteryMQTTTopic: f.str("topic"),
				BatteryMQTTLevelValue: f.str("level_value"),
			})
		}
	}
	return s.ov.open(f, save)
}

func (s *thingsScreen) view(width, height int) string {
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
	if s.detail != "" {
		body = s.detailView(width, bodyH)
	} else {
		scope := "all things"
		if !s.env.actor.IsAdministrator() {
			scope = "things of your organization"
		}
		head := styleDim.Render(cut(fmt.Sprintf("%d %s", s.list.len(), scope), width))
		body = head + "\n" + s.list.view(width, bodyH-1)
	}
	if s.ov.confirm != nil {
		return fitLines(body, width, bodyH) + "\n" + s.ov.confirm.view(width)
	}
	return body
}

func (s *thingsScreen) detailView(width, height int) string {
	t, ok := s.items[s.detail]
	if !ok {
		return "the thing is gone"
	}
	var b strings.Builder
	head := fmt.Sprintf("%s — %s", printable(t.Name), t.Type)
	if t.Alias != "" {
		head += " (" + printable(t.Alias) + ")"
	}
	b.WriteString(styleTitle.Render(cut(head, width)) + "\n")
	var tabs []string
	for i, g := range thingGroups {
		if !groupApplies(t, i) {
			continue
		}
		if i == s.group {
			tabs = append(tabs, styleTabOn.Render("["+g+"]"))
		} else {
			tabs = append(tabs, " "+g+" ")
		}
	}
	b.WriteString(cut(strings.Join(tabs, ""), width) + "\n")
	lines := 3
	if ls := s.links(); len(ls) > 0 {
		b.WriteString(s.linksLine(t, ls, width) + "\n")
		lines++
	}
	b.WriteString("\n")
	now := s.env.now()
	prefix := "org/" + s.orgName(t.OrgID) + "/"
	if t.OrgID.IsZero() {
		prefix = "org/<unassigned>/"
	}
	topic := func(v string) string {
		if v == "" {
			return "–"
		}
		return prefix + v
	}
	var kv [][2]string
	switch s.group {
	case 0:
		kv = [][2]string{
			{"name", t.Name}, {"alias", t.Alias}, {"type", t.Type}, {"description", t.Description},
			{"PIOT chip id", t.PiotID}, {"organization", orDash(s.orgName(t.OrgID))},
			{"enabled", onOff(t.Enabled)}, {"created", unixTime(t.Created)},
			{"last seen", ago(now, t.LastSeen)}, {"last seen interval", seconds(t.LastSeenInterval)},
			{"available", onOff(t.Available)}, {"voltage", strconv.FormatFloat(t.Voltage, 'f', -1, 64)},
			{"alarm", alarmText(t)}, {"id", t.ID.Hex()},
		}
		// Beside the chip id, which the key belongs with; at 80×24 the
		// last line (the id) gives way.
		kv = slices.Insert(kv, 5, deviceSecretsKV(t)...)
	case 1:
		kv = [][2]string{
			{"availability topic", topic(t.AvailabilityTopic)},
			{"online/offline", orDash(t.AvailabilityYes) + " / " + orDash(t.AvailabilityNo)},
			{"telemetry topic", topic(t.TelemetryTopic)}, {"telemetry", t.Telemetry},
			{"store in InfluxDB", onOff(t.StoreInfluxDB)}, {"store in MySQL", onOff(t.StoreMySQLDB)},
			{"MySQL interval", seconds(t.StoreMySQLDBInterval)},
		}
	case 2:
		kv = [][2]string{
			{"value", strings.TrimSpace(t.Sensor.Value + " " + t.Sensor.Unit)}, {"class", t.Sensor.Class},
			{"unit", t.Sensor.Unit}, {"measurement topic", topic(t.Sensor.MeasurementTopic)},
			{"value path", t.Sensor.MeasurementValue}, {"last measurement", ago(now, t.Sensor.MeasurementLast)},
		}
	case 3:
		kv = [][2]string{
			{"state", thingValue(core.Thing{Type: "switch", Switch: t.Switch})},
			{"state topic", topic(t.Switch.StateTopic)},
			{"state on/off", orDash(t.Switch.StateOn) + " / " + orDash(t.Switch.StateOff)},
			{"command topic", topic(t.Switch.CommandTopic)},
			{"command on/off", orDash(t.Switch.CommandOn) + " / " + orDash(t.Switch.CommandOff)},
		}
	case 4:
		kv = [][2]string{
			{"latitude", strconv.FormatFloat(t.LocLat, 'f', -1, 64)}, {"longitude", strconv.FormatFloat(t.LocLng, 'f', -1, 64)},
			{"satellites", strconv.FormatInt(t.LocSat, 10)}, {"fix time", unixTime(t.LocTs)},
			{"tracking", onOff(t.LocTracking)}, {"location topic", topic(t.LocMQTTTopic)},
			{"lat/lng paths", orDash(t.LocMQTTLatValue) + " / " + orDash(t.LocMQTTLngValue)},
			{"sat/ts paths", orDash(t.LocMQTTSatValue) + " / " + orDash(t.LocMQTTTsValue)},
		}
	default:
		// A level is shown only when it is tracked and has been reported:
		// an untracked battery is not at 0%.
		if t.BatteryLevelTracking && t.LastSeen > 0 {
			kv = append(kv, [2]string{"level", fmt.Sprintf("%d%%", t.BatteryLevel)})
		}
		kv = append(kv, [][2]string{
			{"tracking", onOff(t.BatteryLevelTracking)},
			{"battery topic", topic(t.BatteryMQTTTopic)}, {"level path", t.BatteryMQTTLevelValue},
		}...)
	}
	for _, p := range kv {
		if lines >= height-2 {
			break
		}
		b.WriteString(cut("  "+pad(p[0], 20)+" "+printable(orDash(p[1])), width) + "\n")
		lines++
	}
	b.WriteString("\n")
	switch {
	case s.historyFor != s.detail:
		b.WriteString(styleDim.Render("  history: loading…"))
	case s.historyErr != "":
		b.WriteString(styleDim.Render(cut("  history: "+s.historyErr, width)))
	case len(s.history) == 0:
		b.WriteString(styleDim.Render("  history: no data in the last 24 h"))
	default:
		lo, hi := slices.Min(s.history), slices.Max(s.history)
		label := fmt.Sprintf("  24 h  %g…%g ", lo, hi)
		b.WriteString(cut(label+sparkline(s.history, max(width-len(label)-1, 4)), width))
	}
	return b.String()
}

// linksLine shows the parent device and the child sensors on one line,
// the chosen one in brackets so it reads without colour; it scrolls to
// keep the chosen one in view.
func (s *thingsScreen) linksLine(t core.Thing, ls []core.Thing, width int) string {
	choice := min(s.link, len(ls)-1)
	mark := func(i int) string {
		if i == choice {
			return "[" + printable(ls[i].Name) + "]"
		}
		return " " + printable(ls[i].Name) + " "
	}
	var parts []string
	children := ls
	if ls[0].ID == t.ParentID {
		parts = append(parts, "parent "+ls[0].Type+":"+mark(0))
		children = ls[1:]
	}
	if len(children) > 0 {
		label := "sensors:"
		if slices.ContainsFunc(children, func(c core.Thing) bool { return c.Type != "sensor" }) {
			label = "children:"
		}
		for i := range children {
			label += mark(len(ls) - len(children) + i)
		}
		parts = append(parts, label)
	}
	line := "  " + strings.Join(parts, " ")
	if ansi.StringWidth(line) > width {
		// Many sensors: keep the chosen one in view.
		at := strings.Index(line, "["+printable(ls[choice].Name)+"]")
		if skip := ansi.StringWidth(line[:max(at, 0)]) - width/2; skip > 0 {
			line = "  …" + ansi.TruncateLeft(line, skip+3, "")
		}
	}
	return cut(line, width)
}

func alarmText(t core.Thing) string {
	if !t.AlarmActive {
		return "no"
	}
	return "ACTIVE since " + unixTime(t.AlarmActivated)
}

func unixTime(u int64) string {
	if u <= 0 {
		return "–"
	}
	return time.Unix(u, 0).UTC().Format("2006-01-02 15:04:05 UTC")
}

func seconds(n int64) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%d s", n)
}
