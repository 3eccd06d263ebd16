package web

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/piot-appliance/piot/services/core"
)

// thingNotice is the notice of a redirect after a change on the things
// pages (notice's fixed list, continued).
func thingNotice(code string) string {
	switch code {
	case "thing-saved":
		return "Thing saved."
	case "thing-assigned":
		return "Thing assigned."
	case "thing-unassigned":
		return "Thing unassigned."
	case "thing-deleted":
		return "Thing deleted."
	case "switch-on":
		return "Switched on."
	case "switch-off":
		return "Switched off."
	case "alarm-acknowledged":
		return "Alarm acknowledged."
	}
	return ""
}

// thingRow is one line of a things list.
type thingRow struct {
	core.Thing
	OrgName string
}

type thingsData struct {
	// All is the admin view of every thing; Unassigned narrows it.
	All, Unassigned bool
	// Org is the active org (the list of a member); nil in the admin view
	// or without one.
	Org  *core.Org
	Rows []thingRow
	// Orgs are the orgs a thing can be assigned to (the admin view).
	Orgs []core.Org
	// Query is the name filter (a part of the name, any case).
	Query string
}

// byName is the order of every things list.
var byName = core.ThingQuery{SortBy: "name", SortSet: true}

// thingList lists the things of the active org.
func (s *Server) thingList(w http.ResponseWriter, r *http.Request, sess *session) {
	q := byName
	q.NameContains = r.URL.Query().Get("q")
	page, err := s.deps.Core.Things(sess.actor, q)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	d := thingsData{Query: q.NameContains}
	if id := s.deps.Core.ActiveOrg(sess.actor); !id.IsZero() {
		if o, err := s.deps.Core.Org(sess.actor, id); err == nil {
			d.Org = &o
		}
	}
	for _, t := range page.Items {
		d.Rows = append(d.Rows, thingRow{Thing: t})
	}
	s.show(w, r, sess, http.StatusOK, "things", "Things", "/things", d)
}

// thingListAll is the admin view: every thing, with its org and the
// actions to assign and unassign it. Core refuses it to anybody else.
func (s *Server) thingListAll(w http.ResponseWriter, r *http.Request, sess *session) {
	q := byName
	q.All, q.NameContains = true, r.URL.Query().Get("q")
	page, err := s.deps.Core.Things(sess.actor, q)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	orgs, err := s.deps.Core.Orgs(sess.actor)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	names := map[core.ID]string{}
	for _, o := range orgs {
		names[o.ID] = o.Name
	}
	d := thingsData{All: true, Unassigned: r.URL.Query().Get("unassigned") == "1", Orgs: orgs, Query: q.NameContains}
	for _, t := range page.Items {
		if d.Unassigned && !t.OrgID.IsZero() {
			continue
		}
		d.Rows = append(d.Rows, thingRow{Thing: t, OrgName: names[t.OrgID]})
	}
	title := "All things"
	if d.Unassigned {
		title = "Unassigned things"
	}
	s.show(w, r, sess, http.StatusOK, "things", title, "/things", d)
}

// thingID is the {id} of a things route.
func thingID(r *http.Request) (core.ID, error) { return core.ParseID(r.PathValue("id")) }

// backTo is where a form asks to go after its change: one of the
// appliance's own paths, else def.
func backTo(r *http.Request, def string) string {
	if n := r.PostFormValue("next"); n != "" {
		return localPath(n)
	}
	return def
}

// withDone adds the notice code to a local path.
func withDone(path, code string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + "done=" + url.QueryEscape(code)
}

// thingAssign assigns a thing to an org (field org) or, with an empty
// org, unassigns it; core lets only admins.
func (s *Server) thingAssign(w http.ResponseWriter, r *http.Request, sess *session) {
	id, err := thingID(r)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	u := core.ThingUpdate{ID: id, SetOrg: true}
	done := "thing-unassigned"
	if o := r.PostFormValue("org"); o != "" {
		if u.OrgID, err = core.ParseID(o); err != nil {
			s.fail(w, r, sess, err)
			return
		}
		done = "thing-assigned"
	}
	if _, err := s.deps.Core.UpdateThing(r.Context(), sess.actor, u); err != nil {
		s.fail(w, r, sess, err)
		return
	}
	http.Redirect(w, r, withDone(backTo(r, "/things/all"), done), http.StatusSeeOther)
}

// thingData is the thing page: the thing, its links both ways and what
// its forms offer.
type thingData struct {
	T core.Thing
	// Org is the thing's org when the user may see it.
	Org *core.Org
	// Prefix is the topic prefix of the org ("org/<name>/"), empty while
	// the thing is unassigned.
	Prefix   string
	Parent   *core.Thing
	Children []core.Thing
	// Parents are the things that may become its parent.
	Parents []core.Thing
	// Orgs are the orgs the thing can be assigned to (admins).
	Orgs []core.Org
	// Which sections apply to the thing's type.
	ShowSensor, ShowSwitch, ShowLocation, ShowBattery bool
	Types                                             []string
}

// visibleThings are the things the user may list: every thing if core
// lets them see all, else the active org's.
func (s *Server) visibleThings(a core.Actor) ([]core.Thing, error) {
	page, err := s.deps.Core.Things(a, core.ThingQuery{All: true, SortBy: "name", SortSet: true})
	if core.CodeOf(err) == core.CodeForbidden {
		page, err = s.deps.Core.Things(a, byName)
	}
	return page.Items, err
}

// thingPage shows a thing with its editor; core refuses things of other
// orgs, also when the URL is typed.
func (s *Server) thingPage(w http.ResponseWriter, r *http.Request, sess *session) {
	id, err := thingID(r)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	c := s.deps.Core
	t, err := c.Thing(sess.actor, id)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	d := thingData{T: t, Types: []string{core.ThingDevice, core.ThingSensor, core.ThingSwitch}}
	d.Org, _ = c.ThingOrg(sess.actor, &t)
	if d.Org != nil {
		d.Prefix = "org/" + d.Org.Name + "/"
	}
	d.Parent, _ = c.ThingParent(sess.actor, &t)
	all, err := s.visibleThings(sess.actor)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	for _, o := range all {
		if o.ParentID == t.ID {
			d.Children = append(d.Children, o)
		}
		if o.ID != t.ID {
			d.Parents = append(d.Parents, o)
		}
	}
	if sess.actor.IsAdministrator() { // only what to show: core decides the assignment
		d.Orgs, _ = c.Orgs(sess.actor)
	}
	d.ShowSensor = t.Type == core.ThingSensor
	d.ShowSwitch = t.Type == core.ThingSwitch
	d.ShowLocation = t.Type == core.ThingDevice || t.LocTracking || t.LocLat != 0 || t.LocLng != 0
	d.ShowBattery = t.Type == core.ThingDevice || t.BatteryLevelTracking
	s.show(w, r, sess, http.StatusOK, "thing", t.Name, "/things", d)
}

// form reads the fields of a thing's section form: a field absent from
// the form stays as it is (nil); a bad number is the user's mistake.
type form struct {
	r   *http.Request
	err error
}

func (f *form) str(name string) *string {
	v, ok := f.r.PostForm[name]
	if !ok || len(v) == 0 {
		return nil
	}
	s := strings.TrimSpace(v[len(v)-1])
	return &s
}

// flag reads a check box that follows a hidden field of the same name
// ("off"), so an unchecked box still says so.
func (f *form) flag(name string) *bool {
	v, ok := f.r.PostForm[name]
	if !ok || len(v) == 0 {
		return nil
	}
	b := v[len(v)-1] == "on"
	return &b
}

func (f *form) int(name, label string) *int64 {
	s := f.str(name)
	if s == nil {
		return nil
	}
	if *s == "" {
		var zero int64
		return &zero
	}
	n, err := strconv.ParseInt(*s, 10, 64)
	if err != nil && f.err == nil {
		f.err = core.NewError(core.CodeBadInput, label+" must be a whole number")
	}
	return &n
}

func (f *form) float(name, label string) *float64 {
	s := f.str(name)
	if s == nil {
		return nil
	}
	if *s == "" {
		var zero float64
		return &zero
	}
	n, err := strconv.ParseFloat(*s, 64)
	if err != nil && f.err == nil {
		f.err = core.NewError(core.CodeBadInput, label+" must be a number")
	}
	return &n
}

// thingSave saves one section of the thing page through core's update
// operations, as the signed-in user.
func (s *Server) thingSave(w http.ResponseWriter, r *http.Request, sess *session) {
	id, err := thingID(r)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, sess, core.NewError(core.CodeBadInput, "The form could not be read."))
		return
	}
	f := &form{r: r}
	c := s.deps.Core
	switch r.PathValue("section") {
	case "general":
		u := core.ThingUpdate{ID: id, Name: f.str("name"), Alias: f.str("alias"), Description: f.str("description"),
			Type: f.str("type"), Enabled: f.flag("enabled"), LastSeenInterval: f.int("last_seen_interval", "Last seen interval")}
		if p := f.str("parent"); p != nil {
			u.SetParent = true
			if *p != "" {
				u.ParentID, err = core.ParseID(*p)
			}
		}
		if err == nil && f.err == nil {
			_, err = c.UpdateThing(r.Context(), sess.actor, u)
		}
	case "storage":
		u := core.ThingUpdate{ID: id, AvailabilityTopic: f.str("availability_topic"), TelemetryTopic: f.str("telemetry_topic"),
			StoreInfluxDB: f.flag("store_influxdb"), StoreMySQLDB: f.flag("store_mysqldb"),
			StoreMySQLDBInterval: f.int("store_mysqldb_interval", "Storage interval")}
		if f.err == nil {
			_, err = c.UpdateThing(r.Context(), sess.actor, u)
		}
	case "location":
		u := core.ThingUpdate{ID: id, LocLat: f.float("loc_lat", "Latitude"), LocLng: f.float("loc_lng", "Longitude"),
			LocTracking: f.flag("loc_tracking"), LocMQTTTopic: f.str("loc_mqtt_topic"),
			LocMQTTLatValue: f.str("loc_mqtt_lat_value"), LocMQTTLngValue: f.str("loc_mqtt_lng_value"),
			LocMQTTSatValue: f.str("loc_mqtt_sat_value"), LocMQTTTsValue: f.str("loc_mqtt_ts_value")}
		if f.err == nil {
			_, err = c.UpdateThing(r.Context(), sess.actor, u)
		}
	case "battery":
		u := core.ThingUpdate{ID: id, BatteryLevelTracking: f.flag("battery_level_tracking"),
			BatteryMQTTTopic: f.str("battery_mqtt_topic"), BatteryMQTTLevelValue: f.str("battery_mqtt_level_value")}
		_, err = c.UpdateThing(r.Context(), sess.actor, u)
	case "sensor":
		_, err = c.UpdateThingSensor(r.Context(), sess.actor, core.SensorUpdate{ID: id, Class: f.str("class"), Unit: f.str("unit"),
			MeasurementTopic: f.str("measurement_topic"), MeasurementValue: f.str("measurement_value")})
	case "switch":
		_, err = c.UpdateThingSwitch(r.Context(), sess.actor, core.SwitchUpdate{ID: id,
			StateTopic: f.str("state_topic"), StateOn: f.str("state_on"), StateOff: f.str("state_off"),
			CommandTopic: f.str("command_topic"), CommandOn: f.str("command_on"), CommandOff: f.str("command_off")})
	default:
		s.notFound(w, r)
		return
	}
	if err == nil {
		err = f.err
	}
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	http.Redirect(w, r, "/things/"+id.Hex()+"?done=thing-saved#"+r.PathValue("section"), http.StatusSeeOther)
}

// thingSwitch turns a switch on or off with core's switch operation,
// which records the state and publishes the command over MQTT.
func (s *Server) thingSwitch(w http.ResponseWriter, r *http.Request, sess *session) {
	id, err := thingID(r)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	on := r.PostFormValue("state") == "on"
	if _, err := s.deps.Core.SetSwitchState(r.Context(), sess.actor, id, on); err != nil {
		s.fail(w, r, sess, err)
		return
	}
	done := "switch-off"
	if on {
		done = "switch-on"
	}
	http.Redirect(w, r, withDone(backTo(r, "/things/"+id.Hex()), done), http.StatusSeeOther)
}

// thingDelete deletes a thing (core: admins only).
func (s *Server) thingDelete(w http.ResponseWriter, r *http.Request, sess *session) {
	id, err := thingID(r)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	if err := s.deps.Core.DeleteThing(r.Context(), sess.actor, id); err != nil {
		s.fail(w, r, sess, err)
		return
	}
	http.Redirect(w, r, "/things/all?done=thing-deleted", http.StatusSeeOther)
}

// sortThings orders things by name (the map's legend).
func sortThings(ts []core.Thing) {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
}
