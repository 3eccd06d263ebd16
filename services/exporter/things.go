package exporter

import (
	"math"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/piot-appliance/piot/services/core"
)

// The thing metrics: one series per enabled thing of an org (labels org
// and thing, see thingLabels). Disabled, unassigned and deleted things
// have none, so their series go stale in Prometheus at once.
var (
	thingUpDesc = newDesc("thing", "up",
		"Whether the thing is available (1) or not (0), as its availability messages and the last-seen monitor say.",
		"org", "thing")
	thingLastSeenDesc = newDesc("thing", "last_seen_timestamp_seconds",
		"When the thing last sent anything, in Unix seconds; absent until it has.",
		"org", "thing")
	thingAlarmDesc = newDesc("thing", "alarm_active",
		"Whether the thing's alarm is raised (1) or not (0).",
		"org", "thing")
	sensorValueDesc = newDesc("sensor", "value",
		"Last value of a sensor thing, when it is a number; class and unit are the sensor's settings.",
		"org", "thing", "class", "unit")
	switchOnDesc = newDesc("switch", "on",
		"State of a switch thing: on (1) or off (0).",
		"org", "thing")
	batteryDesc = newDesc("thing", "battery_ratio",
		"Battery level of the thing, 0 to 1; absent until a level above 0 is reported.",
		"org", "thing")
	latitudeDesc = newDesc("thing", "location_latitude_degrees",
		"Latitude of the thing's last location fix (WGS 84); absent without a fix.",
		"org", "thing")
	longitudeDesc = newDesc("thing", "location_longitude_degrees",
		"Longitude of the thing's last location fix (WGS 84); absent without a fix.",
		"org", "thing")
	locationTimeDesc = newDesc("thing", "location_timestamp_seconds",
		"When the thing's last location fix was taken, in Unix seconds; absent without a fix.",
		"org", "thing")
)

var thingDescs = []*prometheus.Desc{
	thingUpDesc, thingLastSeenDesc, thingAlarmDesc, sensorValueDesc, switchOnDesc,
	batteryDesc, latitudeDesc, longitudeDesc, locationTimeDesc,
}

// thingsCollector exports the thing metrics, of one org when org is set.
type thingsCollector struct {
	core *core.Core
	org  core.ID
}

func (c *thingsCollector) update(ch chan<- prometheus.Metric) error {
	things := c.core.AllThings()
	labels := thingLabels(things, c.core.OrgNameOf, c.org)
	s := sender{ch: ch}
	for i := range things {
		t := &things[i]
		l, ok := labels[t.ID]
		if !ok {
			continue
		}
		org, name := l.Org, l.Thing
		s.gauge(thingUpDesc, boolValue(t.Available), org, name)
		if t.LastSeen > 0 {
			s.gauge(thingLastSeenDesc, float64(t.LastSeen), org, name)
		}
		s.gauge(thingAlarmDesc, boolValue(t.AlarmActive), org, name)
		if t.Type == core.ThingSensor {
			if v, ok := numeric(t.Sensor.Value); ok {
				s.gauge(sensorValueDesc, v, org, name, t.Sensor.Class, t.Sensor.Unit)
			}
		}
		if t.Type == core.ThingSwitch {
			s.gauge(switchOnDesc, boolValue(t.Switch.State), org, name)
		}
		// The store keeps no time of the battery reading, so a level of 0
		// cannot be told from "never reported": it has no series.
		if t.BatteryLevel > 0 {
			s.gauge(batteryDesc, float64(t.BatteryLevel)/100, org, name)
		}
		if t.LocTs > 0 {
			s.gauge(latitudeDesc, t.LocLat, org, name)
			s.gauge(longitudeDesc, t.LocLng, org, name)
			s.gauge(locationTimeDesc, float64(t.LocTs), org, name)
		}
	}
	return s.err
}

// numeric reads a sensor value as a finite number; text values ("open",
// JSON) have no metric.
func numeric(s string) (float64, bool) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// Describe and Collect make the collector a prometheus.Collector of its
// own, for the registries of org scopes, which have no meta-metrics.
func (c *thingsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range thingDescs {
		ch <- d
	}
}

func (c *thingsCollector) Collect(ch chan<- prometheus.Metric) {
	if err := safeUpdate(c, ch); err != nil {
		ch <- prometheus.NewInvalidMetric(thingUpDesc, err)
	}
}
