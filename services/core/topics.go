package core

import "strings"

// MayFollowTopics says whether a user may read MQTT traffic matching
// filter (the console's Live screen): admins any filter, everybody else
// only filters under org/<one of their orgs>/, the same tenancy the broker
// enforces for org credentials.
func (c *Core) MayFollowTopics(a Actor, filter string) error {
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
	levels := strings.SplitN(filter, "/", 3)
	if len(levels) < 3 || levels[0] != "org" || levels[1] == "" || strings.ContainsAny(levels[1], "+#") {
		return errf(CodeForbidden, "you may only follow topics under org/<your organization>/")
	}
	id, ok := c.orgByName[levels[1]]
	if !ok || !c.isMember(a, id) {
		return errf(CodeForbidden, "you may only follow the topics of your organizations")
	}
	return nil
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
