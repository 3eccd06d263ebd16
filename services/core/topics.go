package core

import "strings"

// MayFollowTopics says whether a user may read MQTT traffic matching
// filter (the console's Live screen): admins any filter, everybody else
// only filters under org/<one of their orgs>/, the same tenancy the broker
// enforces for org credentials.
func (c *Core) MayFollowTopics(a Actor, filter string) error {
	return c.mayReachTopic(a, filter, "follow")
}

// MayPublishTopic says whether a user may publish on topic through the
// broker (the console's Live screen): admins on any topic the broker lets
// clients publish to, everybody else only where their organizations' MQTT
// credentials may publish.
func (c *Core) MayPublishTopic(a Actor, topic string) error {
	if err := requireAuth(a); err != nil {
		return err
	}
	if err := validPublishTopic(topic); err != nil {
		return err
	}
	return c.mayReachTopic(a, topic, "publish")
}

// mayReachTopic is the rule of both: a user reaches what the MQTT
// credentials of one of their organizations reach (MQTTIdentity.Reaches,
// the broker's ACL), an admin everything.
func (c *Core) mayReachTopic(a Actor, topic, verb string) error {
	if err := requireAuth(a); err != nil {
		return err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	u, ok := c.users[a.UserID]
	if !ok {
		return errUnauthenticated
	}
	if u.IsAdmin {
		return nil
	}
	for id := range c.userOrgs[a.UserID] {
		if o, ok := c.orgs[id]; ok && (MQTTIdentity{OrgID: id, OrgName: o.Name}).Reaches(topic) {
			return nil
		}
	}
	return errf(CodeForbidden, "you may only %s topics under org/<your organization>/", verb)
}

// validPublishTopic accepts the topic names a client may publish to: no
// wildcards, and not the broker's own $ topics, which mochi drops.
func validPublishTopic(topic string) error {
	switch {
	case topic == "":
		return errf(CodeBadInput, "topic is empty")
	case strings.HasPrefix(topic, "$"):
		return errf(CodeBadInput, "topic: topics starting with '$' belong to the broker")
	}
	return validTopicName("topic", topic)
}

// OrgOfTopic is the org whose namespace org/<name>/ holds topic; false
// for topics outside every existing org's namespace.
func (c *Core) OrgOfTopic(topic string) (ID, bool) {
	rest, ok := strings.CutPrefix(topic, "org/")
	if !ok {
		return ID{}, false
	}
	name, _, found := strings.Cut(rest, "/")
	if !found {
		return ID{}, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.orgByName[name]
	return id, ok
}

// Reaches is the MQTT tenancy rule the broker applies to every subscribe,
// publish and delivery: an organization's credentials reach topics and
// filters under org/<org>/ only, a device's own credentials under
// org/<org>/<thing>/ only (those levels literal, wildcards only below).
func (id MQTTIdentity) Reaches(topic string) bool {
	if id.Thing != "" {
		return underThing(topic, id.OrgName, id.Thing)
	}
	return underOrg(topic, id.OrgName)
}

// MonitorReaches is the rule of the broker's read-only monitoring
// identity: it may read $SYS and nothing else, and write nothing.
func MonitorReaches(topic string, write bool) bool {
	return !write && (topic == "$SYS" || strings.HasPrefix(topic, "$SYS/"))
}

// underOrg reports whether a topic or filter lies under org/<name>/.
func underOrg(topic, name string) bool {
	rest, ok := strings.CutPrefix(topic, "org/")
	if !ok || name == "" {
		return false
	}
	level, _, found := strings.Cut(rest, "/")
	return found && level == name
}

// underThing reports whether a topic or filter lies under
// org/<org>/<thing>/.
func underThing(topic, org, thing string) bool {
	if !underOrg(topic, org) || thing == "" {
		return false
	}
	rest := topic[len("org/")+len(org)+1:]
	level, _, found := strings.Cut(rest, "/")
	return found && level == thing
}

// ThingTopic is one MQTT topic of a thing, for people setting a device
// up (the web manager's onboarding page).
type ThingTopic struct {
	// Role is what the topic carries: "value", "unit", "state",
	// "command", "availability", "telemetry", "location", "battery".
	Role string
	// Topic is the full topic a device publishes to (for "command": the
	// one the appliance publishes to and the device subscribes).
	Topic string
	// Also is the other full form ingest matches too ("" for a command):
	// a topic field is read relative to org/<org>/ (as in the original
	// server) and relative to the thing itself.
	Also string
}

// ThingTopics lists the topics of a thing of the org named org, in the
// roles and order ingest's topic index listens on them (plus a switch's
// command topic, where core publishes). The form shown first lies under
// org/<org>/<thing>/, which both the org's credentials and the device's
// own reach; the auto-registration defaults ("value", "available") mean
// that one.
func ThingTopics(org string, t Thing) []ThingTopic {
	if org == "" {
		return nil
	}
	base := "org/" + org + "/"
	var out []ThingTopic
	add := func(role, field string) {
		if field == "" {
			return
		}
		tt := ThingTopic{Role: role, Topic: base + t.Name + "/" + field, Also: base + field}
		if strings.HasPrefix(field, t.Name+"/") {
			tt.Topic, tt.Also = tt.Also, tt.Topic
		}
		out = append(out, tt)
	}
	if t.Type == ThingSensor && t.Sensor.MeasurementTopic != "" {
		add("value", t.Sensor.MeasurementTopic)
		add("unit", t.Sensor.MeasurementTopic+"/unit")
	}
	if t.Type == ThingSwitch {
		add("state", t.Switch.StateTopic)
		if t.Switch.CommandTopic != "" {
			out = append(out, ThingTopic{Role: "command", Topic: base + t.Switch.CommandTopic})
		}
	}
	add("availability", t.AvailabilityTopic)
	add("telemetry", t.TelemetryTopic)
	add("location", t.LocMQTTTopic)
	add("battery", t.BatteryMQTTTopic)
	return out
}
