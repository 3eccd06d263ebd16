package web

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// thingFuncs are the template functions of the things pages.
func thingFuncs() map[string]any {
	return map[string]any{
		"ago":        func(unix int64) string { return ago(unix, time.Now()) },
		"abstime":    abstime,
		"isotime":    isotime,
		"thingValue": thingValue,
		"num":        func(v float64) string { return trimNum(v, 6) },
	}
}

// ago is a moment relative to now, as people read it: "just now",
// "5 s ago", "3 min ago", "2 h ago", "4 d ago"; "never" for 0.
func ago(unix int64, now time.Time) string {
	if unix == 0 {
		return "never"
	}
	d := now.Unix() - unix
	switch {
	case d < 0:
		return "in the future"
	case d < 2:
		return "just now"
	case d < 60:
		return strconv.FormatInt(d, 10) + " s ago"
	case d < 3600:
		return strconv.FormatInt(d/60, 10) + " min ago"
	case d < 86400:
		return strconv.FormatInt(d/3600, 10) + " h ago"
	}
	return strconv.FormatInt(d/86400, 10) + " d ago"
}

// abstime is the exact moment, in UTC like the rest of the appliance.
func abstime(unix int64) string {
	if unix == 0 {
		return "never"
	}
	return time.Unix(unix, 0).UTC().Format("2006-01-02 15:04:05 UTC")
}

// isotime is the datetime attribute of <time>.
func isotime(unix int64) string {
	if unix == 0 {
		return ""
	}
	return time.Unix(unix, 0).UTC().Format(time.RFC3339)
}

// thingValue is what a thing reports now, with its unit: a sensor's
// value, a switch's state, a device's battery level when it tracks it.
func thingValue(t core.Thing) string {
	switch t.Type {
	case core.ThingSensor:
		if t.Sensor.Value == "" {
			return "—"
		}
		v := t.Sensor.Value
		if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			v = trimNum(f, 6)
		}
		if t.Sensor.Unit != "" {
			v += " " + t.Sensor.Unit
		}
		return v
	case core.ThingSwitch:
		if t.Switch.State {
			return "on"
		}
		return "off"
	}
	if t.BatteryLevelTracking {
		return strconv.FormatInt(t.BatteryLevel, 10) + " %"
	}
	return "—"
}

// fixedNum formats v with exactly dec decimals (axis labels of one axis
// share them); -0 prints as 0.
func fixedNum(v float64, dec int) string {
	s := strconv.FormatFloat(v, 'f', max(dec, 0), 64)
	if strings.Trim(s, "-0.") == "" {
		s = strings.TrimPrefix(s, "-")
	}
	return s
}

// trimNum formats v with at most dec decimals and no trailing zeros:
// 21.285714285714285 with 2 is 21.29, 20.50 is 20.5.
func trimNum(v float64, dec int) string {
	s := fixedNum(v, dec)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
