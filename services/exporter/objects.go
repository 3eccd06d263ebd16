package exporter

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/piot-appliance/piot/services/core"
)

var (
	usersDesc  = newDesc("", "users", "User accounts.")
	orgsDesc   = newDesc("", "orgs", "Organisations.")
	thingsDesc = newDesc("", "things", "Things, whatever their state (enabled or not, assigned or not).")
)

// objectsCollector exports the object counts of the appliance.
type objectsCollector struct{ core *core.Core }

func (c objectsCollector) update(ch chan<- prometheus.Metric) error {
	st := c.core.Stats()
	s := sender{ch: ch}
	s.gauge(usersDesc, float64(st.Users))
	s.gauge(orgsDesc, float64(st.Orgs))
	s.gauge(thingsDesc, float64(st.Things))
	return s.err
}
