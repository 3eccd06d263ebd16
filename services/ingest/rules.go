package ingest

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/history"
	"github.com/tidwall/gjson"
)

// Limits on what a message may carry.
const (
	// DefaultMaxPayload is the largest payload processed; larger ones are
	// counted and ignored (the broker still delivers them).
	DefaultMaxPayload = 64 << 10
	// MaxTelemetryLen bounds the telemetry kept on a thing.
	MaxTelemetryLen = 16 << 10
	// MaxValueLen bounds a sensor value.
	MaxValueLen = history.MaxValueLen
	// MaxUnitLen bounds a sensor unit.
	MaxUnitLen = 32
	// MaxFutureSkew is how far in the future a location fix may be dated.
	MaxFutureSkew = 24 * time.Hour
)

// Default payloads of the availability rule when a thing has none set
// (the PIOT adapter publishes "yes"; the API cannot set them).
const (
	DefaultAvailabilityYes = "yes"
	DefaultAvailabilityNo  = "no"
)

// Result says what one message did.
type Result struct {
	// Outcome is the message-level result: Processed or one of the
	// Ignored… constants.
	Outcome string
	// Rules lists each thing role the topic matched and its result.
	Rules []RuleResult
	// Points are the accepted readings for the history.
	Points []history.Point
}

// RuleResult is the result of one rule for one thing.
type RuleResult struct {
	Thing  core.ID
	Rule   string
	Result string
}

// Rules, by role (index.go lists which thing fields give the topics):
// battery, availability, telemetry and location apply to things of any
// type that set the topic (the original limited the last three to
// devices); sensor values and units to sensors; switch states to switches.
// A rule that rejects a payload changes nothing, not even last_seen; an
// accepted one also moves last_seen forward to the message time.

// Process applies the rules to one message, as the ingest pipeline does
// for every journaled message: thing state changes in core at once (and
// reaches the store with the next flush), the returned points are not
// stored. It is safe for concurrent use.
func (i *Ingest) Process(topic string, payload []byte, at time.Time) Result {
	return i.process(i.route(topic, len(payload)), payload, at.Unix(), 0)
}

// splitTopic returns the org name and the topic relative to org/<org>/.
func splitTopic(topic string) (org, rel string, ok bool) {
	rest, ok := strings.CutPrefix(topic, "org/")
	if !ok {
		return "", "", false
	}
	org, rel, ok = strings.Cut(rest, "/")
	return org, rel, ok && org != "" && rel != ""
}

// routing is where a message goes: the org it came from and the things
// listening on its topic, or why there are none (outcome). A message is
// routed once: the routing decided before journaling travels with the
// record to the rules (journal.Record.Note); only replayed records, which
// have no note, are routed after the journal.
type routing struct {
	org     core.ID
	ms      []match
	outcome string // empty if there are matches
}

// route finds the things a message is for.
func (i *Ingest) route(topic string, size int) *routing {
	org, rel, ok := splitTopic(topic)
	if !ok {
		return &routing{outcome: IgnoredNotOrg}
	}
	orgID, ok := i.core.OrgIDByName(org)
	if !ok {
		return &routing{outcome: IgnoredUnknownOrg}
	}
	if size > i.cfg.MaxPayload {
		return &routing{org: orgID, outcome: IgnoredTooLarge}
	}
	ms := i.idx.lookup(orgID, rel)
	if len(ms) == 0 {
		return &routing{org: orgID, outcome: IgnoredNoMatch}
	}
	return &routing{org: orgID, ms: ms}
}

// journaled reports whether a message so routed is worth journaling: some
// enabled thing listens.
func (r *routing) journaled() bool {
	if r.outcome != "" {
		return false
	}
	for _, m := range r.ms {
		if m.enabled {
			return true
		}
	}
	return false
}

// message carries what the rules of one message share.
type message struct {
	org     core.ID
	payload []byte
	at      int64
	seq     uint64
	json    int8 // 0 unknown, 1 valid, -1 invalid
}

func (m *message) validJSON() bool {
	if m.json == 0 {
		m.json = -1
		if gjson.ValidBytes(m.payload) {
			m.json = 1
		}
	}
	return m.json == 1
}

// path evaluates a gjson path; result says why nothing was found.
func (m *message) path(p string) (gjson.Result, string) {
	if !m.validJSON() {
		return gjson.Result{}, RejectedBadJSON
	}
	r := gjson.GetBytes(m.payload, p)
	if !r.Exists() || r.Type == gjson.Null {
		return r, RejectedMissingValue
	}
	return r, ""
}

// process runs the rules of the things a message was routed to.
func (i *Ingest) process(rt *routing, payload []byte, at int64, seq uint64) Result {
	if rt.outcome != "" {
		i.stats.inc(RuleMessage, rt.outcome)
		return Result{Outcome: rt.outcome}
	}
	i.stats.inc(RuleMessage, Processed)
	res := Result{Outcome: Processed}
	m := &message{org: rt.org, payload: payload, at: at, seq: seq}
	for _, mt := range rt.ms {
		var result string
		var pt *history.Point
		switch mt.role {
		case roleBattery:
			result, pt = i.battery(m, mt.thing)
		case roleAvailability:
			result = i.availability(m, mt.thing)
		case roleTelemetry:
			result = i.telemetry(m, mt.thing)
		case roleLocation:
			result, pt = i.location(m, mt.thing)
		case roleSensor:
			result, pt = i.sensor(m, mt.thing)
		case roleSensorUnit:
			result = i.sensorUnit(m, mt.thing)
		case roleSwitch:
			result, pt = i.switchState(m, mt.thing)
		}
		rule := mt.role.rule()
		i.stats.inc(rule, result)
		res.Rules = append(res.Rules, RuleResult{Thing: mt.thing.ID, Rule: rule, Result: result})
		if pt != nil {
			res.Points = append(res.Points, *pt)
		}
	}
	return res
}

// update changes a thing's state if it is still enabled and in the org
// the message came from; fn returns the rule's result.
func (i *Ingest) update(m *message, id core.ID, fn func(t *core.Thing) string) string {
	result := ""
	i.core.UpdateThingState(id, func(t *core.Thing) bool {
		switch {
		case !t.Enabled:
			result = IgnoredDisabled
			return false
		case t.OrgID != m.org:
			result = IgnoredUnassigned
			return false
		}
		result = fn(t)
		if result != Accepted && result != AcceptedOlder {
			return false
		}
		if m.at > t.LastSeen {
			t.LastSeen = m.at
		}
		return true
	})
	if result == "" {
		result = IgnoredUnassigned // deleted meanwhile
	}
	return result
}

// text is a payload taken as a value: trimmed, UTF-8.
func text(p []byte) (string, string) {
	if !utf8.Valid(p) {
		return "", RejectedBadEncoding
	}
	s := string(bytes.TrimSpace(p))
	if s == "" {
		return "", RejectedMissingValue
	}
	return s, ""
}

// number reads a gjson result or payload text as a finite float.
func number(r gjson.Result) (float64, bool) {
	var f float64
	switch r.Type {
	case gjson.Number:
		f = r.Num
	case gjson.String:
		v, err := strconv.ParseFloat(strings.TrimSpace(r.Str), 64)
		if err != nil {
			return 0, false
		}
		f = v
	default:
		return 0, false
	}
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}

// battery: level 0–100 from the payload or a gjson path; an unparsable
// level is rejected (the original stored 0).
func (i *Ingest) battery(m *message, cfg *core.Thing) (string, *history.Point) {
	var r gjson.Result
	if cfg.BatteryMQTTLevelValue != "" {
		var why string
		if r, why = m.path(cfg.BatteryMQTTLevelValue); why != "" {
			return why, nil
		}
	} else {
		s, why := text(m.payload)
		if why != "" {
			return why, nil
		}
		r = gjson.Result{Type: gjson.String, Str: s}
	}
	f, ok := number(r)
	if !ok {
		return RejectedUnparsable, nil
	}
	level := int64(math.Round(f))
	if level < 0 || level > 100 {
		return RejectedOutOfRange, nil
	}
	result := i.update(m, cfg.ID, func(t *core.Thing) string {
		t.BatteryLevel = level
		return Accepted
	})
	if result != Accepted {
		return result, nil
	}
	return result, &history.Point{Thing: cfg.ID, Kind: history.KindBattery, TS: m.at, Value: strconv.FormatInt(level, 10), Seq: m.seq}
}

// availability: any message touches last_seen; availability_yes/no set
// the available flag.
func (i *Ingest) availability(m *message, cfg *core.Thing) string {
	yes, no := cfg.AvailabilityYes, cfg.AvailabilityNo
	if yes == "" {
		yes = DefaultAvailabilityYes
	}
	if no == "" {
		no = DefaultAvailabilityNo
	}
	p := string(bytes.TrimSpace(m.payload))
	return i.update(m, cfg.ID, func(t *core.Thing) string {
		switch p {
		case yes:
			t.Available = true
		case no:
			t.Available = false
		}
		return Accepted
	})
}

// telemetry: the payload is kept verbatim.
func (i *Ingest) telemetry(m *message, cfg *core.Thing) string {
	if len(m.payload) > MaxTelemetryLen {
		return RejectedTooLarge
	}
	if !utf8.Valid(m.payload) {
		return RejectedBadEncoding
	}
	p := string(m.payload)
	return i.update(m, cfg.ID, func(t *core.Thing) string {
		t.Telemetry = p
		return Accepted
	})
}

// location: lat/lng (and optional ts, sat) by gjson paths; coordinates
// out of range are rejected; only a fix at least as new as the current one
// replaces it, but every valid fix goes to the history.
func (i *Ingest) location(m *message, cfg *core.Thing) (string, *history.Point) {
	if cfg.LocMQTTLatValue == "" || cfg.LocMQTTLngValue == "" {
		return IgnoredNotConfigured, nil
	}
	latR, why := m.path(cfg.LocMQTTLatValue)
	if why != "" {
		return why, nil
	}
	lngR, why := m.path(cfg.LocMQTTLngValue)
	if why != "" {
		return why, nil
	}
	lat, ok1 := number(latR)
	lng, ok2 := number(lngR)
	if !ok1 || !ok2 {
		return RejectedUnparsable, nil
	}
	if lat < -90 || lat > 90 || lng < -180 || lng > 180 {
		return RejectedOutOfRange, nil
	}
	ts := m.at
	if cfg.LocMQTTTsValue != "" {
		if r, why := m.path(cfg.LocMQTTTsValue); why == "" {
			f, ok := number(r)
			if !ok || f != math.Trunc(f) {
				return RejectedUnparsable, nil
			}
			if f > 0 {
				ts = int64(f)
			}
		}
	}
	if ts > m.at+int64(MaxFutureSkew/time.Second) {
		return RejectedOutOfRange, nil
	}
	var sat int64
	if cfg.LocMQTTSatValue != "" {
		if r, why := m.path(cfg.LocMQTTSatValue); why == "" {
			f, ok := number(r)
			if !ok || f < 0 || f > 1000 || f != math.Trunc(f) {
				return RejectedUnparsable, nil
			}
			sat = int64(f)
		}
	}
	result := i.update(m, cfg.ID, func(t *core.Thing) string {
		if t.LocTs != 0 && ts < t.LocTs {
			return AcceptedOlder
		}
		t.LocLat, t.LocLng, t.LocSat, t.LocTs = lat, lng, sat, ts
		return Accepted
	})
	if result != Accepted && result != AcceptedOlder {
		return result, nil
	}
	v := `{"lat":` + strconv.FormatFloat(lat, 'f', -1, 64) + `,"lng":` + strconv.FormatFloat(lng, 'f', -1, 64) + `,"sat":` + strconv.FormatInt(sat, 10) + `}`
	return result, &history.Point{Thing: cfg.ID, Kind: history.KindLocation, TS: ts, Value: v, Seq: m.seq}
}

// sensor: the value is the payload or a gjson path into it; a missing
// path is rejected (the original stored "").
func (i *Ingest) sensor(m *message, cfg *core.Thing) (string, *history.Point) {
	var v string
	if cfg.Sensor.MeasurementValue != "" {
		r, why := m.path(cfg.Sensor.MeasurementValue)
		if why != "" {
			return why, nil
		}
		switch r.Type {
		case gjson.JSON:
			return RejectedUnparsable, nil
		case gjson.String:
			v = strings.TrimSpace(r.Str)
		default:
			v = r.String()
		}
		if v == "" {
			return RejectedMissingValue, nil
		}
	} else {
		var why string
		if v, why = text(m.payload); why != "" {
			return why, nil
		}
	}
	if len(v) > MaxValueLen {
		return RejectedTooLarge, nil
	}
	var every int64
	result := i.update(m, cfg.ID, func(t *core.Thing) string {
		every = t.StoreMySQLDBInterval
		// A reading measured before the current value (a device's
		// backlog, sent with its own time) belongs to history only; it
		// must not turn the current value and its time back.
		if m.at < t.Sensor.MeasurementLast {
			return AcceptedOlder
		}
		t.Sensor.Value = v
		t.Sensor.MeasurementLast = m.at
		return Accepted
	})
	if result != Accepted && result != AcceptedOlder {
		return result, nil
	}
	return result, &history.Point{Thing: cfg.ID, Kind: history.KindSensor, TS: m.at, Value: v, Seq: m.seq, Every: every}
}

// sensorUnit: <measurement_topic>/unit carries the unit of the values.
func (i *Ingest) sensorUnit(m *message, cfg *core.Thing) string {
	u, why := text(m.payload)
	if why != "" {
		return why
	}
	if len(u) > MaxUnitLen {
		return RejectedTooLarge
	}
	if strings.IndexFunc(u, unicode.IsControl) >= 0 {
		return RejectedBadEncoding
	}
	return i.update(m, cfg.ID, func(t *core.Thing) string {
		t.Sensor.Unit = u
		return Accepted
	})
}

// switchState: state_on / state_off set the state; anything else is
// ignored and counted (the original wrote an empty value to Influx).
func (i *Ingest) switchState(m *message, cfg *core.Thing) (string, *history.Point) {
	p := string(bytes.TrimSpace(m.payload))
	var on bool
	switch {
	case cfg.Switch.StateOn != "" && p == cfg.Switch.StateOn:
		on = true
	case cfg.Switch.StateOff != "" && p == cfg.Switch.StateOff:
		on = false
	default:
		return IgnoredUnknownState, nil
	}
	result := i.update(m, cfg.ID, func(t *core.Thing) string {
		t.Switch.State = on
		return Accepted
	})
	if result != Accepted {
		return result, nil
	}
	v := "0"
	if on {
		v = "1"
	}
	return result, &history.Point{Thing: cfg.ID, Kind: history.KindSwitch, TS: m.at, Value: v, Seq: m.seq}
}
