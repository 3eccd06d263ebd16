// Package edge is the standalone edge adapter (`piot adapter`): at a site
// whose link to the appliance is unreliable (GPRS), devices post their
// packets to it as they would to the appliance; it checks each packet,
// writes it to an on-disk spool before answering 200, and forwards the
// packets, in order, to the appliance over MQTT (QoS 1) on the
// organization's reserved topic (package wire; package relay takes them
// in the appliance), deleting them from the spool only once the
// appliance acknowledged them.
//
// It relays, it does not translate: the appliance decodes, registers and
// publishes exactly as for packets received on /adapter, keeping each
// reading's device time (or the time the edge received the packet).
package edge

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/piot-appliance/piot/internal/fileutil"
	"github.com/piot-appliance/piot/services/adapter/protocol"
	"github.com/piot-appliance/piot/services/adapter/vdgps/upload"
	"github.com/piot-appliance/piot/services/edge/spool"
	"github.com/piot-appliance/piot/services/names"
)

// Record kinds: the first byte of a spool record says the protocol.
const (
	kindPIOT  byte = 'p'
	kindVDGPS byte = 'v'
)

// Reasons of refusals the edge adds to the adapters' ones.
const (
	ReasonSpoolFull  = "spool_full"
	ReasonSpoolError = "spool_error"
)

// Config configures the edge adapter.
type Config struct {
	// Listen serves POST /adapter, POST /adapter/vdgps, GET /status and
	// GET /metrics; VDGPSListen, if set, takes VD GPS uploads on any path.
	Listen, VDGPSListen string

	// Broker is the appliance as a paho URL (tcp://host:port or
	// ssl://host:port); TLS, set for ssl://, should trust only the
	// appliance's CA.
	Broker string
	TLS    *tls.Config
	Org    string
	// Username and Password log in to the appliance: an organization's
	// credentials, or a device's own ("thing:<name>"), with which only
	// that device's packets are taken and forwarded.
	Username, Password string

	// SpoolDir holds the spool and the edge adapter's id.
	SpoolDir string
	Spool    spool.Options

	AESKey string
	// DeviceKeys are devices' own AES keys by device id (LoadDeviceKeys).
	DeviceKeys  map[string]string
	MinInterval time.Duration
	MaxBody     int64

	Window     int
	AckTimeout time.Duration
	BackoffMax time.Duration

	Logger *slog.Logger
}

// Edge is the running edge adapter.
type Edge struct {
	cfg     Config
	log     *slog.Logger
	id      string
	spool   *spool.Spool
	checker *protocol.Checker
	device  string // the thing of a device's own credentials, or ""

	rejected protocol.Rejections
	up       uplinkState

	srv, vdSrv *http.Server
	addr       string
	vdAddr     string

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New opens the spool (recovering it after a crash) and binds the
// listeners; Start serves and forwards.
func New(cfg Config) (*Edge, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Window <= 0 {
		cfg.Window = 32
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 30 * time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = time.Minute
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = protocol.DefaultMaxBody
	}
	if err := os.MkdirAll(cfg.SpoolDir, 0o700); err != nil {
		return nil, fmt.Errorf("edge: spool directory: %w", err)
	}
	id, err := loadID(filepath.Join(cfg.SpoolDir, "edge-id"))
	if err != nil {
		return nil, err
	}
	checker, err := protocol.NewChecker(protocol.Config{AESKey: cfg.AESKey, DeviceKeys: cfg.DeviceKeys, MinInterval: cfg.MinInterval})
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	if cfg.Spool.Policy == "" {
		cfg.Spool.Policy = spool.DropOldest
	}
	if cfg.Spool.MaxBytes <= 0 {
		cfg.Spool.MaxBytes = spool.DefaultMaxBytes
	}
	opt := cfg.Spool
	opt.Logger = cfg.Logger.With("service", "spool")
	sp, err := spool.Open(filepath.Join(cfg.SpoolDir, "queue"), opt)
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	e := &Edge{cfg: cfg, log: cfg.Logger.With("service", "edge"), id: id, spool: sp, checker: checker}
	e.device, _ = strings.CutPrefix(cfg.Username, names.ThingUsernamePrefix)
	if e.device == cfg.Username {
		e.device = ""
	}
	e.up.set(StateConnecting, nil)

	mux := http.NewServeMux()
	mux.HandleFunc("/adapter", e.servePIOT)
	mux.HandleFunc("/adapter/vdgps", e.serveVDGPS)
	mux.HandleFunc("GET /status", e.serveStatus)
	mux.Handle("GET /metrics", e.metricsHandler())
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		sp.Close()
		return nil, fmt.Errorf("edge: listen %s: %w", cfg.Listen, err)
	}
	e.addr = ln.Addr().String()
	e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute}
	go e.serve(e.srv, ln)
	if cfg.VDGPSListen != "" {
		vln, err := net.Listen("tcp", cfg.VDGPSListen)
		if err != nil {
			e.srv.Close()
			sp.Close()
			return nil, fmt.Errorf("edge: listen %s: %w", cfg.VDGPSListen, err)
		}
		e.vdAddr = vln.Addr().String()
		// Legacy trackers post to whatever path they were given.
		e.vdSrv = &http.Server{Handler: http.HandlerFunc(e.serveVDGPS), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute}
		go e.serve(e.vdSrv, vln)
	}
	return e, nil
}

func (e *Edge) serve(srv *http.Server, ln net.Listener) {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		e.log.Error("http listener failed", "addr", ln.Addr().String(), "err", err)
	}
}

// loadID returns the edge adapter's id, generated at its first start.
// The appliance tells resends from new packets by (id, sequence), so the
// id must outlive restarts and change when the spool is thrown away.
func loadID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("edge: %w", err)
	}
	raw := make([]byte, 8)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("edge: %w", err)
	}
	id := hex.EncodeToString(raw)
	if err := fileutil.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("edge: %w", err)
	}
	return id, nil
}

// Addr is the bound address of the main listener; VDGPSAddr that of the
// legacy VD GPS listener ("" if disabled).
func (e *Edge) Addr() string      { return e.addr }
func (e *Edge) VDGPSAddr() string { return e.vdAddr }

// ID is the edge adapter's id.
func (e *Edge) ID() string { return e.id }

// Start forwards the spool to the appliance until Stop.
func (e *Edge) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.forward(ctx)
	}()
}

// Stop stops taking packets, stops forwarding and closes the spool;
// whatever was not acknowledged stays spooled for the next start.
func (e *Edge) Stop(ctx context.Context) error {
	err := e.srv.Shutdown(ctx)
	if e.vdSrv != nil {
		err = errors.Join(err, e.vdSrv.Shutdown(ctx))
	}
	if e.cancel != nil {
		e.cancel()
	}
	e.wg.Wait()
	return errors.Join(err, e.spool.Close())
}

func (e *Edge) servePIOT(w http.ResponseWriter, r *http.Request) {
	body, ok := protocol.ReadPOST(w, r, e.cfg.MaxBody, &e.rejected)
	if !ok {
		return
	}
	dev, out := e.checker.Device(body, r.URL.Query().Get("device"))
	if out.Status == 0 {
		out = e.check(dev)
	}
	if out.Status != 0 {
		e.rejected.Add(out.Reason)
		out.Write(w)
		return
	}
	e.accept(w, r.Context(), kindPIOT, body)
}

func (e *Edge) serveVDGPS(w http.ResponseWriter, r *http.Request) {
	body, ok := protocol.ReadPOST(w, r, e.cfg.MaxBody, &e.rejected)
	if !ok {
		return
	}
	dev, out := upload.Device(body)
	if out.Status == 0 {
		out = e.check(dev)
	}
	if out.Status != 0 {
		e.rejected.Add(out.Reason)
		out.Write(w)
		return
	}
	e.accept(w, r.Context(), kindVDGPS, body)
}

// check applies what the edge knows of a device before spooling its
// packet: the credentials' device, and the minimum interval.
func (e *Edge) check(dev string) protocol.Outcome {
	if e.device != "" && dev != e.device {
		// The appliance would refuse it: better the device hears it now
		// than a 200 for a packet that is never stored.
		return protocol.Outcome{Status: http.StatusForbidden, Reason: protocol.ReasonForeignDevice,
			Msg: "this edge adapter forwards device " + e.device + " only"}
	}
	return e.checker.Limit(dev)
}

// accept spools a checked packet and answers 200 once it is on disk.
func (e *Edge) accept(w http.ResponseWriter, ctx context.Context, kind byte, body []byte) {
	rec := make([]byte, 0, 1+len(body))
	rec = append(append(rec, kind), body...)
	_, err := e.spool.Append(ctx, rec)
	if err != nil {
		out := protocol.Outcome{Status: http.StatusServiceUnavailable, Reason: ReasonSpoolError, Msg: "cannot store the packet, try again later", RetryAfter: 10 * time.Second}
		if errors.Is(err, spool.ErrFull) {
			out.Reason, out.Msg, out.RetryAfter = ReasonSpoolFull, "spool full, try again later", time.Minute
		} else {
			e.log.Error("spool append failed", "err", err)
		}
		e.rejected.Add(out.Reason)
		out.Write(w)
		return
	}
	protocol.Outcome{Status: http.StatusOK}.Write(w)
}
