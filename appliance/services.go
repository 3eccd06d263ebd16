package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/piot-appliance/piot/services/adapter/relay"
	"github.com/piot-appliance/piot/services/api"
	"github.com/piot-appliance/piot/services/broker"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/ingest"
	"github.com/piot-appliance/piot/services/monitor"
	"github.com/piot-appliance/piot/tui"
	"github.com/piot-appliance/piot/tui/backend"
	"github.com/piot-appliance/piot/tui/sshserver"
)

// The supervisor runs ingest and the monitor as they are; the services
// below add to theirs only what starting or stopping them must do
// around them, from the values they hold.

// coreService prunes core's audit trail at start and then hourly, so
// that no change waits for it (core itself is loaded in New); it keeps
// core's line on the console's dashboard and its place in the start
// order.
type coreService struct {
	core *core.Core
	log  *slog.Logger
	stop context.CancelFunc
	done chan struct{}
}

// auditPruneInterval is how often the audit trail is pruned.
const auditPruneInterval = time.Hour

func (*coreService) Name() string { return "core" }

func (s *coreService) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(auditPruneInterval)
		defer t.Stop()
		for {
			if n, err := s.core.PruneAudit(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("audit trail not pruned", "err", err)
			} else if n > 0 {
				s.log.Info("audit trail pruned", "entries", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

func (s *coreService) Stop(ctx context.Context) error {
	s.stop()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("core: audit pruning did not stop: %w", ctx.Err())
	}
}

// brokerService lets core send commands and ingest deliver what it
// journaled through the broker only while it runs, and waits for the
// relay's packets in flight after it stops.
type brokerService struct {
	*broker.Broker
	core  *core.Core
	ing   *ingest.Ingest
	relay *relay.Hook
}

func (s *brokerService) Start(ctx context.Context) error {
	if err := s.Broker.Start(ctx); err != nil {
		s.relay.Close()
		return err
	}
	s.core.SetCommandPublisher(s.Broker.Publish)
	s.ing.SetDeliverer(s.Broker.PublishIngested)
	return nil
}

func (s *brokerService) Stop(ctx context.Context) error {
	s.core.SetCommandPublisher(nil)
	s.ing.SetDeliverer(nil)
	err := s.Broker.Stop(ctx)
	return errors.Join(err, s.relay.Close())
}

// sshService samples the dashboard's rates while the console serves.
type sshService struct {
	*sshserver.Server
	metrics *backend.Metrics
}

func (s *sshService) Start(ctx context.Context) error {
	s.metrics.Start()
	if err := s.Server.Start(ctx); err != nil {
		s.metrics.Stop()
		return err
	}
	return nil
}

func (s *sshService) Stop(ctx context.Context) error {
	defer s.metrics.Stop()
	return s.Server.Stop(ctx)
}

// httpService is the HTTP listener and, when configured, the listener of
// legacy VD GPS trackers, which post to any path.
type httpService struct {
	*api.Server
	vd *vdgpsListener // nil when disabled
}

func (s *httpService) Start(ctx context.Context) error {
	if s.vd != nil {
		if err := s.vd.start(); err != nil {
			return err
		}
	}
	if err := s.Server.Start(ctx); err != nil {
		if s.vd != nil {
			s.vd.close()
		}
		return err
	}
	return nil
}

func (s *httpService) Stop(ctx context.Context) error {
	var err error
	if s.vd != nil {
		err = s.vd.shutdown(ctx)
	}
	return errors.Join(err, s.Server.Stop(ctx))
}

// vdgpsListener serves the VD GPS handler on every path of its own
// address; its failures are logged, not fatal, as the main listener's
// routes serve the same trackers.
type vdgpsListener struct {
	addr string
	srv  *http.Server
	log  *slog.Logger
}

func newVDGPSListener(addr string, h http.Handler, log *slog.Logger) *vdgpsListener {
	if addr == "" {
		return nil
	}
	return &vdgpsListener{addr: addr, log: log, srv: &http.Server{Handler: h,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}}
}

func (l *vdgpsListener) start() error {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", l.addr, err)
	}
	go func() {
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.log.Error("VD GPS listener failed", "err", err)
		}
	}()
	return nil
}

func (l *vdgpsListener) close()                             { l.srv.Close() }
func (l *vdgpsListener) shutdown(ctx context.Context) error { return l.srv.Shutdown(ctx) }

// The probes are the services' lines on the console's dashboard; the
// tracker calls them only while the service runs.

func coreProbe(c *core.Core) backend.Probe {
	return func() (bool, string) {
		st := c.Stats()
		return true, fmt.Sprintf("%d users, %d orgs, %d things", st.Users, st.Orgs, st.Things)
	}
}

func monitorProbe(m *monitor.Monitor) backend.Probe {
	return func() (bool, string) {
		st := m.Stats()
		return true, fmt.Sprintf("%d things watched, %d alarms active", st.Watched, st.ActiveAlarms)
	}
}

func ingestProbe(ing *ingest.Ingest) backend.Probe {
	return func() (bool, string) {
		if !ing.Running() {
			return false, "not running"
		}
		return true, fmt.Sprintf("running, journal %d pending", ing.JournalDepth())
	}
}

func brokerProbe(b *broker.Broker) backend.Probe {
	return func() (bool, string) {
		addrs := b.Addrs()
		if !b.Running() || len(addrs) == 0 {
			return false, "not listening"
		}
		var l []string
		for _, k := range []string{broker.ListenerTCP, broker.ListenerTLS, broker.ListenerWS} {
			if addr, ok := addrs[k]; ok {
				l = append(l, k+" "+addr)
			}
		}
		return true, "listening on " + strings.Join(l, ", ")
	}
}

func sshProbe(srv *sshserver.Server) backend.Probe {
	return func() (bool, string) { return true, "listening on " + srv.Addr() }
}

func httpProbe(srv *api.Server) backend.Probe {
	return func() (bool, string) { return true, "listening on " + srv.Addr() }
}

// listeners are the appliance's endpoints for the console's System
// screen; the HTTP server starts after the console, so it is read only
// once the tracker says it runs.
func listeners(health *backend.Tracker, httpSrv *api.Server, b *broker.Broker, ssh *sshserver.Server) []tui.Listener {
	var out []tui.Listener
	if health.Running("http") {
		out = append(out, tui.Listener{Name: "http", Addr: httpSrv.Addr()})
		if addr := httpSrv.HTTPSAddr(); addr != "" {
			out = append(out, tui.Listener{Name: "https", Addr: addr, TLS: true})
		}
	}
	out = append(out, backend.BrokerListeners(b.Addrs(), b.ServerCertificate())...)
	if ssh != nil {
		out = append(out, backend.SSHListener(ssh.Addr(), ssh.HostKey()))
	}
	return out
}
