// Package tui is the appliance console: a Bubble Tea program with one screen
// per concern (dashboard, things, organisations, users, live MQTT, alarms,
// system). Every action calls services/core as the logged-in user, so the
// console has exactly the rights the API gives the same user.
//
// The services that feed the dashboard and the live screens (broker, ingest,
// monitor, supervisor) are reached through the small interfaces below; any
// of them may be nil, and the screen that needs it then says "not
// available" instead of failing.
package tui

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// ErrUnsupported is returned by optional operations that the running
// appliance cannot perform (reboot outside the image, for example).
var ErrUnsupported = errors.New("not supported on this appliance")

// Deps are the console's collaborators. Only Core is required.
type Deps struct {
	Core *core.Core

	Metrics Metrics    // broker and ingest rates for the dashboard
	Health  Health     // service states from the supervisor
	Live    LiveFeed   // the Live MQTT screen
	Alarms  Alarms     // the Alarms screen; nil falls back to things' alarm flags
	System  SystemInfo // the System screen
	History History    // recent values for the thing detail sparkline
	Backups Backups    // backups off the box (SSH) and the scheduled restore

	// Clients is the Clients view (C on the Live screen).
	Clients MQTTClients

	// Webhooks sends test requests to orgs' webhooks; nil hides the action.
	Webhooks WebhookTester
	// AuthorizedKeys lists and removes the keys of authorized_keys.
	AuthorizedKeys AuthorizedKeys

	// Source is where the session comes from, for core's audit trail; the
	// SSH server sets it per session. Its zero value is "console".
	Source core.Source

	Version string
	Started time.Time // process start, for the uptime; zero hides it
	DataDir string    // disk usage is measured on this file system

	// Refresh is how often live data is re-read; 0 means 2 seconds.
	Refresh time.Duration
	// StatusFor is how long a status line stays; 0 means 6 seconds.
	StatusFor time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Metrics reports the appliance's live numbers. Snapshot must be cheap and
// must not block: the dashboard calls it on every refresh.
type Metrics interface {
	Snapshot() MetricsSnapshot
}

// MetricsSnapshot is one reading of the appliance's counters.
type MetricsSnapshot struct {
	ConnectedClients  int
	MessagesPerSecond float64 // MQTT messages received by the broker
	IngestPerSecond   float64 // messages applied to things by ingest
	JournalDepth      int64   // acknowledged entries not yet in the store
	SpoolDepth        int64   // edge adapter spool entries not yet uplinked
}

// Health reports the state of the appliance's services.
type Health interface {
	Services() []ServiceStatus
}

// ServiceStatus is the state of one supervised service.
type ServiceStatus struct {
	Name   string
	OK     bool
	Detail string // "running", "listening on :8883", or the last error
}

// LiveFeed follows MQTT traffic. The implementation must enforce the same
// rule as the broker's ACL: an admin may follow any topic, everybody else
// only topics under org/<one of their orgs>/; a filter outside that is
// refused with a core error of code FORBIDDEN. The channel is closed when
// ctx ends or the subscription is cut (credentials rotated, org renamed).
//
// Publish sends m (its Time is ignored) through the broker as the user:
// core decides the topic as the broker's ACL would for the user's orgs'
// credentials (core.MayPublishTopic), and the publish is recorded in the
// audit trail.
type LiveFeed interface {
	Subscribe(ctx context.Context, a core.Actor, filter string) (<-chan LiveMessage, error)
	Publish(ctx context.Context, a core.Actor, m LiveMessage) error
}

// LiveMessage is one message seen by the broker.
type LiveMessage struct {
	Time     time.Time
	Topic    string
	Payload  []byte
	QoS      byte
	Retained bool
}

// Alarms is the monitor's alarm list. Implementations authorize by actor:
// admins see every alarm, members the alarms of their orgs' things.
type Alarms interface {
	Active(ctx context.Context, a core.Actor) ([]Alarm, error)
	Recent(ctx context.Context, a core.Actor, limit int) ([]Alarm, error)
	Acknowledge(ctx context.Context, a core.Actor, id string) error
}

// Alarm is one raised (or past) alarm.
type Alarm struct {
	ID       string
	ThingID  core.ID
	Thing    string
	Org      string
	Kind     string // "last-seen", "grafana", ...
	Severity string
	Message  string
	Raised   time.Time
	Cleared  time.Time // zero while active
	AckedBy  string    // empty until acknowledged
	AckedAt  time.Time
}

// MQTTClients are the broker's connected clients, persistent sessions and
// retained messages (the Clients view). Implementations have core decide
// (core.MQTTScope, core.MayManageMQTT): admins see and act on all of
// them, members on their organizations' only, and every action is
// recorded in the audit trail.
type MQTTClients interface {
	// Clients returns the connected clients and the offline persistent
	// sessions, by session key.
	Clients(ctx context.Context, a core.Actor) ([]MQTTClient, error)
	Retained(ctx context.Context, a core.Actor) ([]RetainedMessage, error)
	Disconnect(ctx context.Context, a core.Actor, session string) error
	DeleteSession(ctx context.Context, a core.Actor, session string) error
	DeleteRetained(ctx context.Context, a core.Actor, topic string) error
}

// MQTTClient is one connected client or offline persistent session.
type MQTTClient struct {
	Session  string // the broker's key: <username>/<client id>
	ClientID string
	Username string
	Org      string // empty for the broker's monitor
	Thing    string // set for a device's own credentials
	Remote   string
	Listener string
	Protocol string // "3.1", "3.1.1" or "5"
	// Since is the connection's start, or when an offline session went
	// offline; Expires is when an offline session is dropped.
	Since, Expires time.Time
	Connected      bool
	Persistent     bool
	Subscriptions  []MQTTSubscription
	Inflight       int // QoS 1/2 messages unacknowledged or kept
	QueuedBytes    int // written but not yet sent
}

// MQTTSubscription is one topic filter of a session.
type MQTTSubscription struct {
	Filter string
	QoS    byte
}

// RetainedMessage is one retained message; Created is zero if unknown.
type RetainedMessage struct {
	Topic   string
	Org     string // empty outside every org's namespace
	Payload []byte
	QoS     byte
	Created time.Time
}

// SystemInfo is the System screen's view of the appliance and its
// maintenance actions. The console shows the screen to admins only, and
// implementations must have core authorize every action again
// (core.AuthorizeAdmin, or core operations that check themselves).
// Actions the appliance cannot do return ErrUnsupported.
type SystemInfo interface {
	Listeners() []Listener
	LogTail(n int) []string
	// Logs returns every kept log line; core refuses it to non-admins
	// (core.ActReadLogs).
	Logs(ctx context.Context, a core.Actor) (LogSnapshot, error)
	RegenerateTLS(ctx context.Context, a core.Actor) error
	// Backup writes a store export to path (a file on the appliance) and
	// returns the path written.
	Backup(ctx context.Context, a core.Actor, path string) (string, error)
	Restore(ctx context.Context, a core.Actor, path string) error
	Reboot(ctx context.Context, a core.Actor) error
	PowerOff(ctx context.Context, a core.Actor) error
	// OSSettings and SetOSSettings read and change the operating system
	// settings (appliance image only; ErrUnsupported elsewhere).
	OSSettings(ctx context.Context, a core.Actor) (OSSettings, error)
	SetOSSettings(ctx context.Context, a core.Actor, s OSSettings) error
	// Updates is the A/B slots and the last update (core.ActUpdate;
	// ErrUnsupported when the system was not booted from a slot).
	Updates(ctx context.Context, a core.Actor) (UpdateInfo, error)
	// FetchUpdate has the appliance download the bundle at url and
	// install it into the inactive slot, in the background; Updates
	// follows it (core.ActUpdate).
	FetchUpdate(ctx context.Context, a core.Actor, url string) error
}

// UpdateInfo is the System screen's view of the system slots and the
// last update (appliance/update, which the console does not import).
type UpdateInfo struct {
	Version, Slot                    string
	OtherSlotVersion, OtherSlotState string // empty: the other slot is empty
	// LastResult is empty before the first update.
	LastResult, LastVersion, LastReason string
	LastAt                              time.Time
	// RebootAt is zero when no reboot is scheduled.
	RebootAt time.Time
	// Download is the appliance's own download of a bundle, running or
	// the last one; nil when there was none.
	Download *UpdateDownload
}

// UpdateDownload is how far a download of a bundle got.
type UpdateDownload struct {
	URL         string
	Done, Total int64
	Running     bool
	Err         string // why it stopped; empty while running or installed
}

// LogSnapshot is the kept log, oldest line first. Total counts every line
// ever logged, so a paused view can say how many arrived since.
type LogSnapshot struct {
	Lines []string
	Total uint64
}

// OSSettings are the appliance image's operating system settings, as the
// System screen edits them; lists are comma-separated.
type OSSettings struct {
	Hostname     string
	Network      string // dhcp or static
	NetInterface string
	NetAddress   string
	NetGateway   string
	NetDNS       string
	NTPServers   string
	Timezone     string
}

// Listener is one network endpoint of the appliance.
type Listener struct {
	Name    string // "mqtt-tls", "https", "ssh", ...
	Addr    string
	TLS     bool
	CertSHA string    // certificate or host key fingerprint
	Expires time.Time // certificate expiry; zero for none
}

// History returns recent values of a thing for the detail sparkline: at
// most points numeric values of the series kind ("sensor", "switch",
// "battery"), oldest first, over the given span ending now.
//
// Series answers the History screen: the series kind of the thing from
// q.From to q.To in at most q.Steps steps, with the min, max and average
// of each step (numeric series) and the raw readings. Core decides who
// may read the thing.
type History interface {
	Recent(ctx context.Context, a core.Actor, thing core.ID, kind string, span time.Duration, points int) ([]float64, error)
	Series(ctx context.Context, a core.Actor, thing core.ID, q SeriesQuery) (Series, error)
}

// SeriesQuery asks for one series of a thing over a time range.
type SeriesQuery struct {
	Kind     string // "sensor", "switch", "battery" or "location"
	From, To time.Time
	Steps    int
}

// Series is one series of a thing over a range.
type Series struct {
	Kind string
	Step time.Duration
	// Steps are the numeric steps that hold a value, oldest first; none for
	// locations.
	Steps []SeriesStep
	// Readings are the raw points, oldest first: numbers as text, locations
	// as JSON {"lat":…,"lng":…}. Truncated says the range held more than
	// were returned (the oldest are kept).
	Readings  []SeriesReading
	Truncated bool
}

// SeriesStep is one step's aggregate.
type SeriesStep struct {
	Start         time.Time
	Min, Max, Avg float64
}

// SeriesReading is one raw point.
type SeriesReading struct {
	Time  time.Time
	Value string
}

// Backups takes backups off the appliance over the console's SSH
// connection and finishes or cancels a scheduled restore. Core authorizes
// every call: backups need core.ActBackup, the restore core.ActRestore.
type Backups interface {
	// Export writes a fresh backup (the System screen's format) to w.
	Export(ctx context.Context, a core.Actor, w io.Writer) error
	// List is the backups directory, newest first.
	List(ctx context.Context, a core.Actor) ([]BackupFile, error)
	// Open reads one file of the backups directory by its bare name; a
	// name with a path in it is refused.
	Open(ctx context.Context, a core.Actor, name string) (io.ReadCloser, error)
	// PendingRestore says whether a restore waits for the next start.
	PendingRestore(ctx context.Context, a core.Actor) (PendingRestore, error)
	// CancelRestore removes the scheduled restore.
	CancelRestore(ctx context.Context, a core.Actor) error
	// ApplyRestore restarts the appliance's services so that the restore
	// is applied (ErrUnsupported outside the appliance image).
	ApplyRestore(ctx context.Context, a core.Actor) error
}

// BackupFile is one file of the backups directory.
type BackupFile struct {
	Name     string
	Size     int64
	Modified time.Time
}

// PendingRestore is the restore scheduled for the next start.
type PendingRestore struct {
	Pending   bool
	Scheduled time.Time // when it was scheduled
	Created   time.Time // when the backup was made; zero if it does not say
	// CanApply is true when the appliance can restart its services itself
	// (the appliance image); elsewhere whoever runs `piot run` restarts it.
	CanApply bool
}

// WebhookTester sends one test request to an org's webhook now (the
// monitor; core decides who may: core.ActTestWebhook).
type WebhookTester interface {
	TestWebhook(ctx context.Context, a core.Actor, org core.ID) error
}

// AuthorizedKeys are the keys of <data-dir>/authorized_keys, each of which
// logs in to the console as the first admin. Core decides who may see and
// remove them (core.ActAuthorizedKeys); a removal is recorded in the audit
// trail.
type AuthorizedKeys interface {
	List(ctx context.Context, a core.Actor) (AuthorizedKeyFile, error)
	// Remove drops every line of the key with this fingerprint, keeping
	// the other lines and the comments; it returns how many went.
	Remove(ctx context.Context, a core.Actor, fingerprint string) (int, error)
}

// AuthorizedKeyFile is what authorized_keys holds. Ignored says why the
// SSH server honours none of it (a file others may write); empty when it
// does.
type AuthorizedKeyFile struct {
	Path    string
	Keys    []AuthorizedKey
	Ignored string
}

// AuthorizedKey is one key line. Skipped says why the SSH server does not
// honour the line (options, a line that does not parse); empty when it
// does. Fingerprint is empty for a line that does not parse.
type AuthorizedKey struct {
	Line        int
	Fingerprint string
	Type        string
	Comment     string
	Skipped     string
}
