package core

import "go.mongodb.org/mongo-driver/bson/primitive"

// The domain types core hands out. They carry no bson tags: the store
// keeps its own documents, and mapping.go converts between the two at the
// core/store boundary, so nothing above core needs to import the store.

// ID identifies users, orgs and things. It is an ObjectID because the
// store addresses documents by ObjectID and devices and clients already
// know things by its 24-digit hex form.
type ID = primitive.ObjectID

// Thing types.
const (
	ThingDevice = "device"
	ThingSensor = "sensor"
	ThingSwitch = "switch"
)

// Thing is a device, sensor or switch. Topic fields are relative to
// org/<org>/ as in the original PIOT server.
type Thing struct {
	ID                    ID
	PiotID                string
	Name                  string
	Description           string
	Alias                 string
	Type                  string
	Enabled               bool
	Created               int64
	OrgID                 ID
	ParentID              ID
	Available             bool
	LastSeen              int64
	LastSeenInterval      int64
	Voltage               float64
	AvailabilityTopic     string
	AvailabilityYes       string
	AvailabilityNo        string
	TelemetryTopic        string
	Telemetry             string
	StoreInfluxDB         bool
	StoreMySQLDB          bool
	StoreMySQLDBInterval  int64
	LocLat                float64
	LocLng                float64
	LocSat                int64
	LocTs                 int64
	LocMQTTTopic          string
	LocMQTTLatValue       string
	LocMQTTLngValue       string
	LocMQTTTsValue        string
	LocMQTTSatValue       string
	LocTracking           bool
	AlarmActive           bool
	AlarmActivated        int64
	BatteryLevel          int64
	BatteryMQTTTopic      string
	BatteryMQTTLevelValue string
	BatteryLevelTracking  bool
	Sensor                Sensor
	Switch                Switch
	// AESKey is the device's own AES-128 key of the PIOT protocol
	// (alongside the global one). Write-only: no API returns it.
	AESKey string
	// MQTTPassword is the bcrypt hash of the device's own MQTT password
	// (username "thing:<name>"), empty without device credentials.
	MQTTPassword string
}

// Sensor holds the settings and last value of a sensor thing.
type Sensor struct {
	Value            string
	Unit             string
	Class            string
	MeasurementTopic string
	MeasurementValue string
	MeasurementLast  int64
}

// Switch holds the settings and last state of a switch thing.
type Switch struct {
	State        bool
	StateTopic   string
	StateOn      string
	StateOff     string
	CommandTopic string
	CommandOn    string
	CommandOff   string
}

// SSHKey is a user's console key: a public key in OpenSSH authorized_keys
// form.
type SSHKey struct {
	Fingerprint string // SHA256:...
	Key         string // "ssh-ed25519 AAAA... comment"
	Comment     string
	Added       int64
}
