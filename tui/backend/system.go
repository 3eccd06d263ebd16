package backend

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/piot-appliance/piot/appliance/osctl"
	"github.com/piot-appliance/piot/internal/fileutil"
	"github.com/piot-appliance/piot/services/broker"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/tui"
	"go.mongodb.org/mongo-driver/bson"
	gossh "golang.org/x/crypto/ssh"
)

// TLSManager is the broker's certificate maintenance.
type TLSManager interface {
	RegenerateServerCertificate() error
}

// BackupDir is where backups go, under the data directory, when the
// console gives no path or a relative one.
const BackupDir = "backups"

// BackupFormat is the first line's format tag of a backup file.
const BackupFormat = "piot-backup/1"

// SystemConfig wires the System screen's adapter.
type SystemConfig struct {
	DataDir string
	Version string
	// Core writes the backups (it reaches the store); nil makes Backup
	// unsupported.
	Core *core.Core
	// TLS regenerates the MQTT server certificate; nil makes
	// RegenerateTLS unsupported.
	TLS TLSManager
	// Listeners lists the endpoints as they are now.
	Listeners func() []tui.Listener
	Logs      *LogRing
	// Logger records the maintenance actions (who did what).
	Logger *slog.Logger
	Now    func() time.Time
	// OS is piot init's control channel in the appliance image; nil
	// outside it, where the OS actions are unsupported.
	OS *osctl.Client
	// Updates reports the system slots and the last update; nil when the
	// system was not booted from a slot.
	Updates func() (tui.UpdateInfo, error)
	// FetchUpdate starts the appliance's own download and install of a
	// bundle; nil when the system was not booted from a slot.
	FetchUpdate func(url string) error
}

// System implements tui.SystemInfo.
type System struct{ cfg SystemConfig }

// NewSystem builds the adapter.
func NewSystem(cfg SystemConfig) *System {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &System{cfg: cfg}
}

// Listeners implements tui.SystemInfo.
func (s *System) Listeners() []tui.Listener {
	if s.cfg.Listeners == nil {
		return nil
	}
	return s.cfg.Listeners()
}

// LogTail implements tui.SystemInfo.
func (s *System) LogTail(n int) []string {
	if s.cfg.Logs == nil {
		return nil
	}
	return s.cfg.Logs.Tail(n)
}

// Logs implements tui.SystemInfo: the whole ring, to admins only.
func (s *System) Logs(_ context.Context, a core.Actor) (tui.LogSnapshot, error) {
	if err := core.AuthorizeAdmin(a, core.ActReadLogs); err != nil {
		return tui.LogSnapshot{}, err
	}
	if s.cfg.Logs == nil {
		return tui.LogSnapshot{}, unsupported("the log is not kept")
	}
	lines, total := s.cfg.Logs.Snapshot()
	return tui.LogSnapshot{Lines: lines, Total: total}, nil
}

func unsupported(why string) error { return fmt.Errorf("%w: %s", tui.ErrUnsupported, why) }

// RegenerateTLS implements tui.SystemInfo: it reissues the MQTT server
// certificate from the appliance CA. The CA itself stays, so devices that
// trust it are not affected; a certificate configured from files cannot
// be regenerated (replace the files and send SIGHUP).
func (s *System) RegenerateTLS(ctx context.Context, a core.Actor) error {
	if err := core.AuthorizeAdmin(a, core.ActRegenerateTLS); err != nil {
		return err
	}
	if s.cfg.TLS == nil {
		return unsupported("the MQTT broker is not running")
	}
	if err := s.cfg.TLS.RegenerateServerCertificate(); err != nil {
		if errors.Is(err, broker.ErrUserCertificate) {
			return unsupported(broker.ErrUserCertificate.Error())
		}
		return err
	}
	s.cfg.Logger.Info("console: TLS server certificate regenerated", "by", a.Email)
	s.record(ctx, a, "regenerateTls", "MQTT server certificate")
	return nil
}

// Backup implements tui.SystemInfo: it writes every collection of the
// store to a new file (mode 0600; it holds password hashes) as JSON lines:
// a header {"format": BackupFormat, ...}, then one
// {"c": <collection>, "d": <document as canonical Extended JSON>} per
// document. An empty path picks <data-dir>/backups/piot-<time>.jsonl, a
// relative one is taken inside <data-dir>/backups; an existing file is
// never overwritten. The export reads the collections one after another
// while the appliance runs, so it is not a point-in-time snapshot, and
// thing state changed in the last flush interval may be missing.
func (s *System) Backup(ctx context.Context, a core.Actor, path string) (string, error) {
	if err := core.AuthorizeAdmin(a, core.ActBackup); err != nil {
		return "", err
	}
	if s.cfg.Core == nil {
		return "", unsupported("the store is not open")
	}
	path, err := s.backupPath(path)
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", core.NewError(core.CodeConflict, "the backup file already exists")
		}
		return "", fmt.Errorf("create backup: %w", err)
	}
	colls, docs, err := s.export(ctx, a, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("backup: %w", err)
	}
	s.cfg.Logger.Info("console: store backup written", "by", a.Email, "path", path, "collections", colls, "documents", docs)
	return path, nil
}

func (s *System) backupPath(p string) (string, error) {
	dir := filepath.Join(s.cfg.DataDir, BackupDir)
	switch {
	case p == "":
		p = "piot-" + s.cfg.Now().UTC().Format("20060102T150405Z") + ".jsonl"
		fallthrough
	case !filepath.IsAbs(p):
		if !filepath.IsLocal(p) {
			return "", core.NewError(core.CodeBadInput, "a relative backup path must stay inside "+BackupDir+"/ of the data directory")
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("backup directory: %w", err)
		}
		p = filepath.Join(dir, p)
	}
	p = filepath.Clean(p)
	if st, err := os.Stat(filepath.Dir(p)); err != nil || !st.IsDir() {
		return "", core.NewError(core.CodeBadInput, "the backup's directory does not exist")
	}
	return p, nil
}

// export has core write the backup into f and makes it durable.
func (s *System) export(ctx context.Context, a core.Actor, f *os.File) (colls, docs int, err error) {
	colls, docs, err = s.cfg.Core.Backup(ctx, a, f, core.BackupHeader{Format: BackupFormat, Version: s.cfg.Version, Created: s.cfg.Now()})
	if err != nil {
		return colls, docs, err
	}
	return colls, docs, f.Sync()
}

// RestorePendingFile is where a scheduled restore waits, in the data
// directory, for the next start.
const RestorePendingFile = "restore-pending.jsonl"

// Restore implements tui.SystemInfo by scheduling the restore: core, the
// broker and the ingest keep the configuration in memory, so the backup is
// checked now, copied to <data-dir>/restore-pending.jsonl (0600) and
// applied by the next start before anything loads the store.
func (s *System) Restore(ctx context.Context, a core.Actor, path string) error {
	if err := core.AuthorizeAdmin(a, core.ActRestore); err != nil {
		return err
	}
	if path == "" {
		return core.NewError(core.CodeBadInput, "give the backup file to restore")
	}
	if !filepath.IsAbs(path) {
		if !filepath.IsLocal(path) {
			return core.NewError(core.CodeBadInput, "a relative backup path must stay inside "+BackupDir+"/ of the data directory")
		}
		path = filepath.Join(s.cfg.DataDir, BackupDir, path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return core.NewError(core.CodeBadInput, "cannot read the backup: "+err.Error())
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	var header struct {
		Format string `bson:"format"`
	}
	if bson.UnmarshalExtJSON([]byte(first), true, &header) != nil || header.Format != BackupFormat {
		return core.NewError(core.CodeBadInput, "not a PIOT backup ("+BackupFormat+")")
	}
	dst := filepath.Join(s.cfg.DataDir, RestorePendingFile)
	if err := fileutil.WriteFile(dst, raw, 0o600); err != nil {
		return fmt.Errorf("schedule restore: %w", err)
	}
	s.cfg.Logger.Warn("console: store restore scheduled for the next start", "by", a.Email, "backup", path)
	s.record(ctx, a, "restore", path)
	if s.cfg.OS != nil {
		// In the image, init restarts the appliance to apply it now.
		return s.cfg.OS.Do(ctx, osctl.Restart)
	}
	return nil
}

// Updates implements tui.SystemInfo.
func (s *System) Updates(_ context.Context, a core.Actor) (tui.UpdateInfo, error) {
	if err := core.AuthorizeAdmin(a, core.ActUpdate); err != nil {
		return tui.UpdateInfo{}, err
	}
	if s.cfg.Updates == nil {
		return tui.UpdateInfo{}, tui.ErrUnsupported
	}
	return s.cfg.Updates()
}

// FetchUpdate implements tui.SystemInfo.
func (s *System) FetchUpdate(ctx context.Context, a core.Actor, raw string) error {
	if err := core.AuthorizeAdmin(a, core.ActUpdate); err != nil {
		return err
	}
	if s.cfg.FetchUpdate == nil {
		return tui.ErrUnsupported
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return core.NewError(core.CodeBadInput, "url: want the bundle's http:// or https:// address")
	}
	if err := s.cfg.FetchUpdate(raw); err != nil {
		return err
	}
	s.cfg.Logger.Info("update download started from the console", "by", a.Email, "url", u.Redacted())
	s.record(ctx, a, "installUpdate", "update bundle from "+u.Redacted())
	return nil
}

// Reboot implements tui.SystemInfo; only the appliance image may reboot.
func (s *System) Reboot(ctx context.Context, a core.Actor) error {
	if err := core.AuthorizeAdmin(a, core.ActReboot); err != nil {
		return err
	}
	return s.osAction(ctx, a, osctl.Reboot, "reboot")
}

// PowerOff implements tui.SystemInfo; only the appliance image may power
// off.
func (s *System) PowerOff(ctx context.Context, a core.Actor) error {
	if err := core.AuthorizeAdmin(a, core.ActPowerOff); err != nil {
		return err
	}
	return s.osAction(ctx, a, osctl.PowerOff, "power off")
}

func (s *System) osAction(ctx context.Context, a core.Actor, act osctl.Action, what string) error {
	if s.cfg.OS == nil {
		return unsupported(what + " is only available in the appliance image")
	}
	s.cfg.Logger.Warn("console: "+what, "by", a.Email)
	// Recorded before: the appliance may be gone once it is done.
	s.record(ctx, a, string(act), "appliance")
	return s.cfg.OS.Do(ctx, act)
}

// OSSettings implements tui.SystemInfo.
func (s *System) OSSettings(ctx context.Context, a core.Actor) (tui.OSSettings, error) {
	if err := core.AuthorizeAdmin(a, core.ActSeeOSSettings); err != nil {
		return tui.OSSettings{}, err
	}
	if s.cfg.OS == nil {
		return tui.OSSettings{}, unsupported("OS settings are only available in the appliance image")
	}
	st, err := s.cfg.OS.State(ctx)
	if err != nil {
		return tui.OSSettings{}, err
	}
	o := st.Settings
	return tui.OSSettings{
		Hostname: o.Hostname, Network: o.Network, NetInterface: o.NetInterface,
		NetAddress: o.NetAddress, NetGateway: o.NetGateway, NetDNS: strings.Join(o.NetDNS, ","),
		NTPServers: strings.Join(o.NTPServers, ","), Timezone: o.Timezone,
	}, nil
}

// SetOSSettings implements tui.SystemInfo; piot init validates, stores
// and applies them.
func (s *System) SetOSSettings(ctx context.Context, a core.Actor, o tui.OSSettings) error {
	if err := core.AuthorizeAdmin(a, core.ActChangeOSSettings); err != nil {
		return err
	}
	if s.cfg.OS == nil {
		return unsupported("OS settings are only available in the appliance image")
	}
	list := func(v string) []string {
		var out []string
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
		return out
	}
	err := s.cfg.OS.Apply(ctx, osctl.Settings{
		Hostname: o.Hostname, Network: o.Network, NetInterface: o.NetInterface,
		NetAddress: o.NetAddress, NetGateway: o.NetGateway, NetDNS: list(o.NetDNS),
		NTPServers: list(o.NTPServers), Timezone: o.Timezone,
	})
	var bad *osctl.Error
	if errors.As(err, &bad) && bad.Status == 400 {
		return core.NewError(core.CodeBadInput, bad.Msg)
	}
	if err == nil {
		s.cfg.Logger.Warn("console: OS settings changed", "by", a.Email, "hostname", o.Hostname, "network", o.Network)
		s.record(ctx, a, "setOsSettings", "hostname "+o.Hostname+", network "+o.Network)
	}
	return err
}

// record adds the console's maintenance actions, done outside core, to
// core's audit trail.
func (s *System) record(ctx context.Context, a core.Actor, action, target string) {
	if s.cfg.Core != nil {
		s.cfg.Core.Record(ctx, a, action, target)
	}
}

// CertFingerprint is the SHA-256 fingerprint of a certificate's DER in
// the form OpenSSH uses for host keys ("SHA256:<base64>"), short enough
// for the System screen. openssl computes the same digest:
// openssl x509 -outform der | openssl dgst -sha256 -binary | base64.
func CertFingerprint(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	sum := sha256.Sum256(cert.Raw)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// BrokerListeners lists the MQTT listeners from broker.Addrs; the TLS one
// carries the fingerprint and expiry of cert, the certificate it serves.
func BrokerListeners(addrs map[string]string, cert *x509.Certificate) []tui.Listener {
	var out []tui.Listener
	for _, l := range []struct{ id, name string }{
		{broker.ListenerTCP, "mqtt"}, {broker.ListenerTLS, "mqtt-tls"}, {broker.ListenerWS, "mqtt-ws"},
	} {
		addr, ok := addrs[l.id]
		if !ok {
			continue
		}
		tl := tui.Listener{Name: l.name, Addr: addr}
		if l.id == broker.ListenerTLS {
			tl.TLS = true
			if cert != nil {
				tl.CertSHA, tl.Expires = CertFingerprint(cert), cert.NotAfter
			}
		}
		out = append(out, tl)
	}
	return out
}

// SSHListener describes the console's SSH endpoint with its host key's
// fingerprint.
func SSHListener(addr string, hostKey gossh.PublicKey) tui.Listener {
	l := tui.Listener{Name: "ssh", Addr: addr}
	if hostKey != nil {
		l.CertSHA = gossh.FingerprintSHA256(hostKey)
	}
	return l
}
