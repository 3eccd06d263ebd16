package web

import (
	"context"
	"time"
)

// Appliance is what the onboarding and status pages read of the running
// appliance. The composition root fills it from the supervisor's health
// tracker (the one behind /readyz and the console's dashboard), the
// listeners and the store; the web imports none of them. A nil function
// shows "not available" on the page.
type Appliance struct {
	// Started is when the appliance process started (for the uptime).
	Started time.Time
	// DataDir is the data directory, whose file system's usage is shown.
	DataDir string
	// Services are the supervised services in start order with their
	// health.
	Services func() []ServiceStatus
	// Listeners are the bound network endpoints (http, https, mqtt,
	// mqtt-tls, mqtt-ws, ssh, vdgps).
	Listeners func() []Listener
	// Store pings the store.
	Store func(ctx context.Context) error
	// Ready is /readyz's verdict: every service started, the store
	// answering, ingest writing.
	Ready func(ctx context.Context) error
	// AdapterKeySet says whether the PIOT protocol's appliance-wide AES
	// key is configured. The key itself never reaches the web.
	AdapterKeySet bool
}

// ServiceStatus is one supervised service's state.
type ServiceStatus struct {
	Name   string
	OK     bool
	Detail string
}

// Listener is one network endpoint of the appliance.
type Listener struct {
	Name string // "http", "https", "mqtt", "mqtt-tls", "mqtt-ws", "ssh", "vdgps"
	Addr string
	TLS  bool
	// Fingerprint of the certificate or SSH host key, when known.
	Fingerprint string
	Expires     time.Time
}

// listener returns the named listener, if the appliance has it.
func (s *Server) listener(name string) (Listener, bool) {
	if s.deps.Appliance.Listeners == nil {
		return Listener{}, false
	}
	for _, l := range s.deps.Appliance.Listeners() {
		if l.Name == name {
			return l, true
		}
	}
	return Listener{}, false
}
