// Package osctl is how `piot run` asks `piot init` (PID 1 of the appliance
// image) to change the operating system: host name, network, clock,
// reboot, power off, restarting the appliance. Init owns the OS; the
// console only asks, over a unix socket that only root can reach. Outside
// the image there is no socket and every action says so.
package osctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// SocketEnv names the environment variable in which init passes the
// socket's path to `piot run`.
const SocketEnv = "PIOT_INIT_SOCKET"

// ErrNoInit says the appliance does not run under `piot init`.
var ErrNoInit = errors.New("only available in the appliance image (piot init is not PID 1)")

// Settings are the OS settings an admin may change; their names are the
// keys of /data/piot.yaml.
type Settings struct {
	Hostname     string   `json:"hostname"`
	Network      string   `json:"network"` // dhcp or static
	NetInterface string   `json:"net_interface,omitempty"`
	NetAddress   string   `json:"net_address,omitempty"`
	NetGateway   string   `json:"net_gateway,omitempty"`
	NetDNS       []string `json:"net_dns,omitempty"`
	NTPServers   []string `json:"ntp_servers,omitempty"`
	Timezone     string   `json:"timezone"`
}

// State is what init reports: the settings and what is live now.
type State struct {
	Settings    Settings  `json:"settings"`
	Addresses   []string  `json:"addresses"` // "eth0 10.0.2.15/24 (dhcp)"
	ClockSynced bool      `json:"clock_synced"`
	LastSync    time.Time `json:"last_sync"`
	Version     string    `json:"version"`
	Restarts    int       `json:"restarts"` // of `piot run` since boot
	// RebootAt is when a scheduled reboot happens; zero when none is.
	RebootAt time.Time `json:"reboot_at,omitzero"`
}

// Action is a power or service action.
type Action string

// The actions init performs.
const (
	Reboot   Action = "reboot"
	PowerOff Action = "poweroff"
	Restart  Action = "restart" // restart `piot run`, e.g. to apply a restore
)

// Client talks to init. A nil *Client is valid and answers ErrNoInit.
type Client struct {
	hc *http.Client
}

// FromEnv returns the client of the socket init named, or nil.
func FromEnv() *Client {
	if p := os.Getenv(SocketEnv); p != "" {
		return New(p)
	}
	return nil
}

// New returns a client of the socket at path.
func New(path string) *Client {
	return &Client{hc: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}
}

// State reads the OS state.
func (c *Client) State(ctx context.Context) (State, error) {
	var s State
	return s, c.do(ctx, http.MethodGet, "/state", nil, &s)
}

// Apply validates, stores and applies settings.
func (c *Client) Apply(ctx context.Context, s Settings) error {
	return c.do(ctx, http.MethodPut, "/settings", s, nil)
}

// Do performs a power or service action.
func (c *Client) Do(ctx context.Context, a Action) error {
	return c.do(ctx, http.MethodPost, "/action/"+string(a), nil, nil)
}

// ScheduleReboot has init reboot at a time (a quiet hour for an update
// to be tried); the zero time cancels the schedule.
func (c *Client) ScheduleReboot(ctx context.Context, at time.Time) error {
	return c.do(ctx, http.MethodPut, "/reboot-at", rebootAt{At: at}, nil)
}

type rebootAt struct {
	At time.Time `json:"at,omitzero"`
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	if c == nil {
		return ErrNoInit
	}
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://init"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("piot init: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("piot init: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return &Error{Status: resp.StatusCode, Msg: e.Error}
		}
		return &Error{Status: resp.StatusCode, Msg: strings.TrimSpace(string(raw))}
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// Error is init's refusal; Status 400 means the settings were bad.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Handler is init's side.
type Handler interface {
	State() State
	Apply(ctx context.Context, s Settings) error
	Do(a Action) error
	// ScheduleReboot reboots at at (zero cancels); BadInput for a time
	// it refuses.
	ScheduleReboot(at time.Time) error
}

// BadInput marks an Apply error as the caller's mistake (HTTP 400).
type BadInput struct{ Err error }

func (e BadInput) Error() string { return e.Err.Error() }
func (e BadInput) Unwrap() error { return e.Err }

// Serve answers requests on ln until it is closed.
func Serve(ln net.Listener, h Handler) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, _ *http.Request) { reply(w, http.StatusOK, h.State()) })
	mux.HandleFunc("PUT /settings", func(w http.ResponseWriter, r *http.Request) {
		var s Settings
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			reply(w, http.StatusBadRequest, map[string]string{"error": "bad settings: " + err.Error()})
			return
		}
		if err := h.Apply(r.Context(), s); err != nil {
			status := http.StatusInternalServerError
			if errors.As(err, new(BadInput)) {
				status = http.StatusBadRequest
			}
			reply(w, status, map[string]string{"error": err.Error()})
			return
		}
		reply(w, http.StatusOK, map[string]string{})
	})
	mux.HandleFunc("PUT /reboot-at", func(w http.ResponseWriter, r *http.Request) {
		var a rebootAt
		dec := json.NewDecoder(io.LimitReader(r.Body, 4<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			reply(w, http.StatusBadRequest, map[string]string{"error": "bad time: " + err.Error()})
			return
		}
		if err := h.ScheduleReboot(a.At); err != nil {
			status := http.StatusInternalServerError
			if errors.As(err, new(BadInput)) {
				status = http.StatusBadRequest
			}
			reply(w, status, map[string]string{"error": err.Error()})
			return
		}
		reply(w, http.StatusOK, map[string]string{})
	})
	mux.HandleFunc("POST /action/{action}", func(w http.ResponseWriter, r *http.Request) {
		a := Action(r.PathValue("action"))
		switch a {
		case Reboot, PowerOff, Restart:
		default:
			reply(w, http.StatusNotFound, map[string]string{"error": "unknown action " + string(a)})
			return
		}
		if err := h.Do(a); err != nil {
			reply(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		reply(w, http.StatusOK, map[string]string{})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
