package store

import "go.mongodb.org/mongo-driver/bson/primitive"

// ID is the identity of every stored document.
type ID = primitive.ObjectID

// Collection names. They match the original PIOT database so that data
// exported from it can be imported with mongoimport.
const (
	CollUsers   = "users"
	CollOrgs    = "orgs"
	CollMembers = "orgusers"
	CollThings  = "things"
	// CollRevokedTokens is PIOT's own: the ids of signed-out sessions.
	CollRevokedTokens = "revoked_tokens"
	// CollAudit is PIOT's own: the audit trail of changes.
	CollAudit = "audit"
	// CollThingState is PIOT's own: the things' state (what they
	// report), in pages of many things (core/statepages.go).
	CollThingState = "thing_state"
)

// AuditEntry is one change made through core. TS is Unix seconds; the
// entries are read newest first by _id, whose time and counter order them
// within the second too.
type AuditEntry struct {
	ID     ID     `bson:"_id"`
	TS     int64  `bson:"ts"`
	Actor  string `bson:"actor"`
	Action string `bson:"action"`
	Target string `bson:"target,omitempty"`
	Source string `bson:"source,omitempty"`
}

// RevokedToken is a token signed out before it expired. Until is its
// expiry (Unix seconds): after it the signature check refuses the token
// anyway, so the entry can go.
type RevokedToken struct {
	ID    ID    `bson:"_id"`
	Until int64 `bson:"until"`
}

// User is a person who can log in. Timestamps are Unix seconds (int64).
type User struct {
	ID          ID     `bson:"_id"`
	Email       string `bson:"email"`
	Password    string `bson:"password"` // bcrypt hash, never exposed
	Created     int64  `bson:"created"`
	IsAdmin     bool   `bson:"is_admin"`
	ActiveOrgID ID     `bson:"active_org_id"`
	// TokenVersion is carried in every API token; bumping it (password
	// change) revokes all tokens issued before, whatever their timestamps.
	TokenVersion int64 `bson:"token_version,omitempty"`
	// SSHKeys log the user in to the console.
	SSHKeys []SSHKey `bson:"ssh_keys,omitempty"`
	// NotifyAlarms opts the user in to alarm e-mails of their orgs.
	NotifyAlarms bool `bson:"notify_alarms,omitempty"`
}

// SSHKey is a public key in OpenSSH authorized_keys form.
type SSHKey struct {
	Fingerprint string `bson:"fingerprint"` // SHA256:...
	Key         string `bson:"key"`         // "ssh-ed25519 AAAA... comment"
	Comment     string `bson:"comment"`
	Added       int64  `bson:"added"`
}

// Org is an organisation; its name is the second MQTT topic level.
type Org struct {
	ID               ID     `bson:"_id"`
	Name             string `bson:"name"`
	Description      string `bson:"description"`
	Created          int64  `bson:"created"`
	InfluxDB         string `bson:"influxdb"`
	InfluxDBUsername string `bson:"influxdb_username"`
	InfluxDBPassword string `bson:"influxdb_password"` // write-only
	MySQLDB          string `bson:"mysqldb"`
	MySQLDBUsername  string `bson:"mysqldb_username"`
	MySQLDBPassword  string `bson:"mysqldb_password"`        // write-only
	MQTTUsername     string `bson:"mqtt_username,omitempty"` // absent when unset, so the unique index skips it
	MQTTPassword     string `bson:"mqtt_password"`           // hash, write-only
	// MetricsTokens let the org's own Prometheus scrape its things.
	MetricsTokens []MetricsToken `bson:"metrics_tokens,omitempty"`
	// NotifyWebhookURL receives the org's alarm notifications (JSON,
	// HMAC-SHA256 signed with NotifyWebhookSecret, which is write-only).
	NotifyWebhookURL    string `bson:"notify_webhook_url,omitempty"`
	NotifyWebhookSecret string `bson:"notify_webhook_secret,omitempty"`
}

// MetricsToken is a per-org scrape token; only its SHA-256 is kept.
type MetricsToken struct {
	ID      string `bson:"id"` // public handle, to revoke it
	Hash    string `bson:"hash"`
	Created int64  `bson:"created"`
}

// Membership links a user to an org. The pair is unique.
type Membership struct {
	ID      ID    `bson:"_id"`
	OrgID   ID    `bson:"org_id"`
	UserID  ID    `bson:"user_id"`
	Created int64 `bson:"created"`
}

// Sensor holds the settings and last value of a sensor thing.
type Sensor struct {
	Value            string `bson:"value"`
	Unit             string `bson:"unit"`
	Class            string `bson:"class"`
	MeasurementTopic string `bson:"measurement_topic"`
	MeasurementValue string `bson:"measurement_value"`
	MeasurementLast  int64  `bson:"measurement_last"`
}

// Switch holds the settings and last state of a switch thing.
type Switch struct {
	State        bool   `bson:"state"`
	StateTopic   string `bson:"state_topic"`
	StateOn      string `bson:"state_on"`
	StateOff     string `bson:"state_off"`
	CommandTopic string `bson:"command_topic"`
	CommandOn    string `bson:"command_on"`
	CommandOff   string `bson:"command_off"`
}

// Thing is a device, sensor or switch. Topic fields are relative to
// org/<org>/ as in the original PIOT server.
type Thing struct {
	ID                    ID      `bson:"_id"`
	PiotID                string  `bson:"piot_id,omitempty"` // absent rather than "" so the unique index skips it
	Name                  string  `bson:"name"`
	Description           string  `bson:"description"`
	Alias                 string  `bson:"alias"`
	Type                  string  `bson:"type"`
	Enabled               bool    `bson:"enabled"`
	Created               int64   `bson:"created"`
	OrgID                 ID      `bson:"org_id"`
	ParentID              ID      `bson:"parent_id"`
	Available             bool    `bson:"available"`
	LastSeen              int64   `bson:"last_seen"`
	LastSeenInterval      int64   `bson:"last_seen_interval"`
	Voltage               float64 `bson:"voltage"`
	AvailabilityTopic     string  `bson:"availability_topic"`
	AvailabilityYes       string  `bson:"availability_yes"`
	AvailabilityNo        string  `bson:"availability_no"`
	TelemetryTopic        string  `bson:"telemetry_topic"`
	Telemetry             string  `bson:"telemetry"`
	StoreInfluxDB         bool    `bson:"store_influxdb"`
	StoreMySQLDB          bool    `bson:"store_mysqldb"`
	StoreMySQLDBInterval  int64   `bson:"store_mysqldb_interval"`
	LocLat                float64 `bson:"loc_lat"`
	LocLng                float64 `bson:"loc_lng"`
	LocSat                int64   `bson:"loc_sat"`
	LocTs                 int64   `bson:"loc_ts"`
	LocMQTTTopic          string  `bson:"loc_mqtt_topic"`
	LocMQTTLatValue       string  `bson:"loc_mqtt_lat_value"`
	LocMQTTLngValue       string  `bson:"loc_mqtt_lng_value"`
	LocMQTTTsValue        string  `bson:"loc_mqtt_ts_value"`
	LocMQTTSatValue       string  `bson:"loc_mqtt_sat_value"`
	LocTracking           bool    `bson:"loc_tracking"`
	AlarmActive           bool    `bson:"alarm_active"`
	AlarmActivated        int64   `bson:"alarm_activated"`
	BatteryLevel          int64   `bson:"battery_level"`
	BatteryMQTTTopic      string  `bson:"battery_mqtt_topic"`
	BatteryMQTTLevelValue string  `bson:"battery_mqtt_level_value"`
	BatteryLevelTracking  bool    `bson:"battery_level_tracking"`
	Sensor                Sensor  `bson:"sensor"`
	Switch                Switch  `bson:"switch"`
	// AESKey is the device's own AES-128 key of the PIOT protocol
	// (alongside the global one). Write-only: no API returns it.
	AESKey string `bson:"aes_key,omitempty"`
	// MQTTPassword is the bcrypt hash of the device's own MQTT password
	// (username "thing:<name>"), empty without device credentials.
	MQTTPassword string `bson:"mqtt_password,omitempty"`
}
