package exporter

import "github.com/piot-appliance/piot/services/core"

// ThingLabel is how a thing is named in the `org` and `thing` labels of
// its metrics, and so in the labels of the Grafana alerts about it.
type ThingLabel struct {
	Org   string
	Thing string
}

// ThingLabels returns the labels of every thing the exporter exports
// (enabled, and assigned to an org that exists), by thing id.
func ThingLabels(c *core.Core) map[core.ID]ThingLabel {
	return thingLabels(c.AllThings(), c.OrgNameOf, core.ID{})
}

// ThingByLabels finds the thing exported under an org and thing label, as
// an alert from Grafana names it (for POST /alerts/grafana).
func ThingByLabels(c *core.Core, org, thing string) (core.ID, bool) {
	id, ok := c.OrgIDByName(org)
	if !ok {
		return core.ID{}, false
	}
	for tid, l := range thingLabels(c.AllThings(), c.OrgNameOf, id) {
		if l.Thing == thing {
			return tid, true
		}
	}
	return core.ID{}, false
}

// exported reports whether a thing has metrics: disabled things and things
// outside any org have none.
func exported(t *core.Thing) bool {
	return t.Enabled && !t.OrgID.IsZero()
}

// thingLabels labels the exported things (of one org unless org is zero).
//
// A thing is labelled by its alias when it has one, else by its name. Names
// are unique but aliases are free text, so two things of an org may share
// an alias, or one's alias may be another's name; those would make two
// series with the same labels, which Prometheus refuses. Every thing whose
// alias clashes is labelled by its name instead, until nothing clashes: at
// least one side of any clash is an alias (names never clash), so this
// ends, and the result does not depend on the order of the things.
func thingLabels(things []core.Thing, orgName func(core.ID) (string, bool), org core.ID) map[core.ID]ThingLabel {
	type entry struct {
		id          core.ID
		org         core.ID
		name, label string
	}
	orgs := map[core.ID]string{}
	var es []*entry
	for i := range things {
		t := &things[i]
		if !exported(t) || (!org.IsZero() && t.OrgID != org) {
			continue
		}
		if _, ok := orgs[t.OrgID]; !ok {
			on, ok := orgName(t.OrgID)
			if !ok {
				continue // the org is being deleted
			}
			orgs[t.OrgID] = on
		}
		label := t.Alias
		if label == "" {
			label = t.Name
		}
		es = append(es, &entry{id: t.ID, org: t.OrgID, name: t.Name, label: label})
	}
	type key struct {
		org   core.ID
		label string
	}
	for changed := true; changed; {
		changed = false
		count := map[key]int{}
		for _, e := range es {
			count[key{e.org, e.label}]++
		}
		for _, e := range es {
			if e.label != e.name && count[key{e.org, e.label}] > 1 {
				e.label = e.name
				changed = true
			}
		}
	}
	out := make(map[core.ID]ThingLabel, len(es))
	for _, e := range es {
		out[e.id] = ThingLabel{Org: orgs[e.org], Thing: e.label}
	}
	return out
}
