package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Listener IDs, also the keys of Broker.Addrs.
const (
	ListenerTCP = "tcp"
	ListenerTLS = "tls"
	ListenerWS  = "ws"
)

// listener accepts MQTT connections over TCP, TLS or WebSocket for mochi.
// mochi ships listeners too, but they cannot report the port bound for
// ":0", give no deadline to a connection that never sends CONNECT, and do
// not close connections still in the TLS or WebSocket handshake on
// shutdown; this one does all three, and wraps every connection in the
// packet size guard.
type listener struct {
	id        string
	ln        net.Listener
	tlsConfig *tls.Config // nil: plain
	ws        bool
	limits    connLimits
	log       *slog.Logger
	fail      func(error) // reports an accept loop that died

	establish listeners.EstablishFn
	http      *http.Server
	upgrader  websocket.Upgrader

	mu     sync.Mutex
	conns  map[net.Conn]*limitConn // socket -> its MQTT stream, nil until it has one
	closed bool
	wg     sync.WaitGroup
}

// listen binds addr at once, so that a port in use fails Start and ":0"
// resolves before anyone asks for Addrs.
func listen(id, addr string, tlsConfig *tls.Config, ws bool, limits connLimits, log *slog.Logger, fail func(error)) (*listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s on %s: %w", id, addr, err)
	}
	l := &listener{
		id: id, ln: ln, tlsConfig: tlsConfig, ws: ws, limits: limits,
		log: log.With("listener", id), fail: fail,
		conns: map[net.Conn]*limitConn{},
		upgrader: websocket.Upgrader{
			Subprotocols: []string{"mqtt", "mqttv3.1"},
			// Browsers may connect from any page: MQTT authenticates in
			// CONNECT, not with cookies, so cross-origin use grants nothing.
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
	if ws {
		l.http = &http.Server{Handler: l, ReadHeaderTimeout: connectTimeout, ErrorLog: slog.NewLogLogger(l.log.Handler(), slog.LevelDebug)}
	}
	return l, nil
}

// ID identifies the listener to mochi.
func (l *listener) ID() string { return l.id }

// Address is the bound address.
func (l *listener) Address() string { return l.ln.Addr().String() }

// Protocol names the transport for logs.
func (l *listener) Protocol() string {
	switch {
	case l.ws:
		return "ws"
	case l.tlsConfig != nil:
		return "mqtts"
	}
	return "mqtt"
}

// Init is a no-op: the socket is bound in listen.
func (l *listener) Init(*slog.Logger) error { return nil }

// Serve accepts connections until Close.
func (l *listener) Serve(establish listeners.EstablishFn) {
	l.establish = establish
	if l.http != nil {
		if err := l.http.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !l.isClosed() {
			l.fail(fmt.Errorf("%s listener: %w", l.id, err))
		}
		return
	}
	var backoff time.Duration
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if l.isClosed() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of file descriptors or similar: wait rather than spin
				// or die, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				l.log.Warn("mqtt accept failed, retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			l.fail(fmt.Errorf("%s listener: %w", l.id, err))
			return
		}
		backoff = 0
		if !l.track(conn) {
			conn.Close()
			return
		}
		go l.serveConn(conn, conn)
	}
}

// ServeHTTP upgrades a WebSocket request and serves MQTT over it.
func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := l.upgrader.Upgrade(w, r, nil)
	if err != nil {
		l.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	raw := ws.NetConn()
	if !l.track(raw) {
		raw.Close()
		return
	}
	l.serveConn(raw, &wsConn{Conn: raw, ws: ws})
}

// serveConn hands one connection to mochi; raw is the socket tracked for
// shutdown, conn the stream MQTT is read from.
func (l *listener) serveConn(raw, conn net.Conn) {
	defer l.untrack(raw)
	// mochi sets the keepalive deadline only after CONNECT.
	_ = raw.SetDeadline(time.Now().Add(connectTimeout))
	if tc, ok := raw.(*net.TCPConn); ok && l.limits.socketBuffer > 0 {
		_ = tc.SetWriteBuffer(l.limits.socketBuffer)
		_ = tc.SetReadBuffer(l.limits.socketBuffer)
	}
	if l.tlsConfig != nil {
		conn = tls.Server(conn, l.tlsConfig)
	}
	lc := newLimitConn(conn, l.limits, l.log)
	l.mu.Lock()
	l.conns[raw] = lc
	l.mu.Unlock()
	err := l.establish(l.id, lc)
	if err != nil && !errors.Is(err, io.EOF) {
		l.log.Debug("mqtt connection ended", "remote", raw.RemoteAddr().String(), "err", err)
	}
	// mochi has closed lc; it may still be writing its last packets and
	// lingering (bounded by lingerTime), and the socket must stay tracked
	// until then.
	if done := lc.closed(); done != nil {
		<-done
	}
}

func (l *listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[c] = nil
	l.wg.Add(1)
	return true
}

func (l *listener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	_ = c.Close()
	l.wg.Done()
}

func (l *listener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Close stops accepting, lets closeClients disconnect the MQTT clients
// politely, cuts every connection still open (e.g. mid-handshake) and
// waits until mochi is done with all of them.
func (l *listener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()

	if l.http != nil {
		_ = l.http.Close() // closes the socket and non-upgraded connections
	} else {
		_ = l.ln.Close()
	}
	closeClients(l.id)
	// The clients were sent DISCONNECT and their streams closed; give
	// those their linger so the DISCONNECT arrives, and cut the rest
	// (handshakes, connections that never sent CONNECT) now.
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	l.cut(func(lc *limitConn) bool { return lc == nil || lc.closed() == nil })
	select {
	case <-done:
		return
	case <-time.After(lingerTime):
	}
	l.cut(func(*limitConn) bool { return true })
	<-done
}

// cut closes the sockets that which selects.
func (l *listener) cut(which func(*limitConn) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c, lc := range l.conns {
		if which(lc) {
			_ = c.Close()
		}
	}
}

// wsConn carries an MQTT byte stream in binary WebSocket messages; an MQTT
// packet may span messages and a message may hold several packets.
type wsConn struct {
	net.Conn // the socket: addresses, deadlines, Close
	ws       *websocket.Conn
	r        io.Reader // current message
}

// Read reads from the current message, moving to the next when it ends.
func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				return 0, errors.New("websocket: MQTT needs binary messages")
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

// Write sends p as one binary message. Writes are serialized by limitConn.
func (c *wsConn) Write(p []byte) (int, error) {
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
