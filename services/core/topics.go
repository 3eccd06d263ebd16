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
