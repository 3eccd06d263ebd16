package web

import (
	"net/http"

	"github.com/piot-appliance/piot/services/core"
)

// onboardingData is the device onboarding page: where devices send their
// data, for the active org and, when chosen, one of its things.
type onboardingData struct {
	Org core.Org
	// Things of the active org, for the thing chooser.
	Things []core.Thing
	// Thing is the chosen thing (zero ID: none).
	Thing  core.Thing
	Topics []core.ThingTopic
	// Adapter URLs of this appliance, as the browser reached it.
	AdapterURL, VDGPSURL, CAURL string
	// VDGPSPort is the extra listener for legacy VD GPS firmware, "" when
	// off.
	VDGPSPort string
	Host      string
	// MQTT listeners: port numbers, "" when a listener is off.
	MQTTPort, MQTTSPort, WSPort string
	// Username is the MQTT username the example uses: the thing's own
	// credentials, else the org's; "" when neither is set.
	Username   string
	ThingCreds bool
	// Example is the mosquitto_pub command line (shell-escaped, a
	// variable in place of the password); ExampleTLS the same over TLS.
	Example, ExampleTLS string
	// ThingKey: the chosen device has its own AES key (never shown).
	ThingKey bool
	// AdapterKey: the appliance-wide AES key is configured.
	AdapterKey bool
}

// onboarding shows how devices reach the appliance: the adapter URLs,
// the MQTT listeners, a thing's topics and an example publish. Members
// see their org's page; core refuses orgs and things the actor may not
// read.
func (s *Server) onboarding(w http.ResponseWriter, r *http.Request, sess *session) {
	c := s.deps.Core
	base := baseURL(r)
	d := onboardingData{
		AdapterURL: base + "/adapter", VDGPSURL: base + "/adapter/vdgps", CAURL: base + "/ca.crt",
		Host: requestHost(r), AdapterKey: s.deps.Appliance.AdapterKeySet,
	}
	if l, ok := s.listener("mqtt"); ok {
		d.MQTTPort = portOf(l.Addr)
	}
	if l, ok := s.listener("mqtt-tls"); ok {
		d.MQTTSPort = portOf(l.Addr)
	}
	if l, ok := s.listener("mqtt-ws"); ok {
		d.WSPort = portOf(l.Addr)
	}
	if l, ok := s.listener("vdgps"); ok {
		d.VDGPSPort = portOf(l.Addr)
	}
	n := core.MaxPageSize
	q := core.ThingQuery{SortBy: "name", SortSet: true, First: &n}
	if id := c.ActiveOrg(sess.actor); !id.IsZero() {
		o, err := c.Org(sess.actor, id)
		if err != nil {
			s.fail(w, r, sess, err)
			return
		}
		d.Org = o
	} else {
		// No active org (an admin in none): an admin's chooser offers
		// every thing; core refuses "all" to anybody else.
		q.All = sess.actor.IsAdministrator()
	}
	if !d.Org.ID.IsZero() || q.All {
		page, err := c.Things(sess.actor, q)
		if err != nil {
			s.fail(w, r, sess, err)
			return
		}
		d.Things = page.Items
	}
	if v := r.URL.Query().Get("thing"); v != "" {
		id, err := core.ParseID(v)
		if err != nil {
			s.fail(w, r, sess, err)
			return
		}
		t, err := c.Thing(sess.actor, id)
		if err != nil {
			s.fail(w, r, sess, err)
			return
		}
		org, err := c.ThingOrg(sess.actor, &t)
		if err != nil {
			s.fail(w, r, sess, err)
			return
		}
		d.Thing, d.ThingKey = t, t.AESKey != ""
		if org != nil {
			d.Org = *org
			d.Topics = core.ThingTopics(org.Name, t)
		}
		s.example(&d)
	}
	s.show(w, r, sess, http.StatusOK, "onboarding", "Device onboarding", "/onboarding", d)
}

// example builds the mosquitto_pub lines for the chosen thing's first
// topic a device publishes to. The password is never in it: the line
// reads it from a variable the user sets.
func (s *Server) example(d *onboardingData) {
	var topic core.ThingTopic
	for _, tt := range d.Topics {
		if tt.Role != "command" && tt.Role != "unit" {
			topic = tt
			break
		}
	}
	if topic.Topic == "" {
		return
	}
	payload := "yes"
	switch topic.Role {
	case "value":
		payload = "21.5"
	case "state":
		payload = nonEmpty(d.Thing.Switch.StateOn, "on")
	case "availability":
		payload = nonEmpty(d.Thing.AvailabilityYes, "yes")
	case "battery":
		payload = "87"
	case "location":
		payload = `{"lat":49.19,"lng":16.61}`
	case "telemetry":
		payload = `{"rssi":-61}`
	}
	d.Username = d.Org.MQTTUsername
	if d.Thing.MQTTPassword != "" {
		d.Username, d.ThingCreds = core.ThingUsernamePrefix+d.Thing.Name, true
	}
	user := nonEmpty(d.Username, "USERNAME")
	pw := ` -P "$PIOT_MQTT_PASSWORD" `
	tail := shellLine("-t", topic.Topic, "-m", payload, "-q", "1")
	if d.MQTTPort != "" {
		d.Example = shellLine("mosquitto_pub", "-h", d.Host, "-p", d.MQTTPort, "-u", user) + pw + tail
	}
	if d.MQTTSPort != "" {
		d.ExampleTLS = shellLine("mosquitto_pub", "-h", d.Host, "-p", d.MQTTSPort, "--cafile", "piot-ca.crt", "-u", user) + pw + tail
	}
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
