package monitor

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/services/core/coretest"
	"github.com/piot-appliance/piot/services/store"
)

// env is a real embedded store and core with an admin and one org.
type env struct {
	ctx   context.Context
	st    *store.Store
	c     *core.Core
	admin core.Actor
	org   core.ID
	log   *slog.Logger
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newEnv(t *testing.T) *env {
	t.Helper()
	log := testLogger(t)
	fx := coretest.Open(t, coretest.Options{AdminEmail: "admin@x.test", AdminPassword: "password123", Org: "acme", Logger: log})
	return &env{ctx: context.Background(), st: fx.Store, c: fx.Core, admin: fx.Admin, org: fx.Org.ID, log: log}
}

// thing creates a thing; org zero leaves it unassigned.
func (e *env) thing(t *testing.T, name string, org core.ID, enabled bool, interval int64) core.ID {
	t.Helper()
	th, err := e.c.CreateThing(e.ctx, e.admin, name, core.ThingDevice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.UpdateThing(e.ctx, e.admin, core.ThingUpdate{
		ID: th.ID, SetOrg: true, OrgID: org, Enabled: &enabled, LastSeenInterval: &interval,
	}); err != nil {
		t.Fatal(err)
	}
	return th.ID
}

// report simulates a device report, as ingest records it.
func (e *env) report(id core.ID) {
	e.c.UpdateThingState(id, func(t *core.Thing) bool { t.LastSeen = time.Now().Unix(); return true })
}

func (e *env) user(t *testing.T, email string, org core.ID, notify bool) core.Actor {
	t.Helper()
	u, err := e.c.CreateUser(e.ctx, e.admin, email, "password123", false)
	if err != nil {
		t.Fatal(err)
	}
	if !org.IsZero() {
		if err := e.c.AddOrgUser(e.ctx, e.admin, org, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	if notify {
		if _, err := e.c.SetUserNotify(e.ctx, e.admin, u.ID, true); err != nil {
			t.Fatal(err)
		}
	}
	a, err := e.c.Login(e.ctx, email, "password123")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (e *env) state(t *testing.T, id core.ID) core.Thing {
	t.Helper()
	th, err := e.c.Thing(core.System(), id)
	if err != nil {
		t.Fatal(err)
	}
	return th
}

func (e *env) monitor(t *testing.T, c *core.Core, cfg Config) *Monitor {
	t.Helper()
	cfg.Logger = e.log
	m, err := New(cfg, Deps{Core: c, Store: e.st})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	return m
}

// waitFor polls cond until it holds or limit passes; it returns how long
// it took.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// hookCall is one webhook request the receiver accepted.
type hookCall struct {
	Payload  WebhookPayload
	Delivery string
}

// hookReceiver is a webhook endpoint on loopback that verifies the
// signature; failFirst answers 500 to that many requests first.
type hookReceiver struct {
	srv       *httptest.Server
	secret    string
	mu        sync.Mutex
	failFirst int
	requests  int
	calls     []hookCall
	badSig    int
}

func newHookReceiver(t *testing.T, secret string, failFirst int) *hookReceiver {
	h := &hookReceiver{secret: secret, failFirst: failFirst}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests++
	if h.requests <= h.failFirst {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	want := ""
	if h.secret != "" {
		want = Sign(body, h.secret)
	}
	if r.Method != http.MethodPost || !hmac.Equal([]byte(r.Header.Get(HeaderSignature)), []byte(want)) {
		h.badSig++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var p WebhookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.calls = append(h.calls, hookCall{Payload: p, Delivery: r.Header.Get(HeaderDelivery)})
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) received() []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookCall(nil), h.calls...)
}

func (h *hookReceiver) count(event string) int {
	n := 0
	for _, c := range h.received() {
		if c.Payload.Event == event {
			n++
		}
	}
	return n
}

// receivedMail is one message the SMTP server received.
type receivedMail struct {
	From string   `json:"from"`
	To   []string `json:"to"`
	Data string   `json:"data"`
	TLS  bool     `json:"tls"`
	Auth string   `json:"auth"`
}

func (m receivedMail) subject() string {
	for _, l := range strings.Split(m.Data, "\n") {
		if s, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "Subject: "); ok {
			return s
		}
	}
	return ""
}

// smtpServer is Debian's aiosmtpd on loopback, writing every message it
// accepts as a JSON line.
type smtpServer struct {
	port int
	file string
}

const smtpScript = `
import json, ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

port, out = int(sys.argv[1]), sys.argv[2]
cert = sys.argv[3] if len(sys.argv) > 3 else ""

class Handler:
    async def handle_DATA(self, server, session, envelope):
        auth = ""
        if session.auth_data is not None:
            auth = session.auth_data.login.decode()
        rec = {"from": envelope.mail_from, "to": envelope.rcpt_tos,
               "data": envelope.content.decode("utf-8", "replace"),
               "tls": session.ssl is not None, "auth": auth}
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        return "250 OK"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"piot" and auth_data.password == b"s3cret pass"
    return AuthResult(success=ok, auth_data=auth_data)

kw = {}
if cert:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, sys.argv[4])
    kw = dict(tls_context=ctx, require_starttls=True, authenticator=authenticator,
              auth_required=True, auth_require_tls=True)
c = Controller(Handler(), hostname="127.0.0.1", port=port, **kw)
c.start()
print("READY", flush=True)
sys.stdin.read()
c.stop()
`

// requireAiosmtpd skips (or fails, when PIOT_REQUIRE_MOSQUITTO is set as
// in make test) without python3-aiosmtpd.
func requireAiosmtpd(t *testing.T) string {
	t.Helper()
	// Debian's package installs for the system interpreter, which a
	// python3 earlier on PATH (pyenv, venv) does not see.
	var err error
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		var p string
		if p, err = exec.LookPath(py); err == nil {
			if err = exec.Command(p, "-c", "import aiosmtpd.controller").Run(); err == nil {
				return p
			}
		}
	}
	{
		if os.Getenv("PIOT_REQUIRE_MOSQUITTO") != "" {
			t.Fatalf("python3-aiosmtpd not installed (run tests/deps.sh): %v", err)
		}
		t.Skipf("python3-aiosmtpd not installed (run tests/deps.sh): %v", err)
	}
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startSMTP runs aiosmtpd; with tlsCert it requires STARTTLS and AUTH
// (user "piot", password "s3cret pass").
func startSMTP(t *testing.T, tlsCert *testCert) *smtpServer {
	t.Helper()
	py := requireAiosmtpd(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "smtpd.py")
	if err := os.WriteFile(script, []byte(smtpScript), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{port: freePort(t), file: filepath.Join(dir, "mails.jsonl")}
	args := []string{script, strconv.Itoa(s.port), s.file}
	if tlsCert != nil {
		args = append(args, tlsCert.certFile, tlsCert.keyFile)
	}
	cmd := exec.Command(py, args...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := sc.Scan() && sc.Text() == "READY"
		ready <- ok
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("aiosmtpd did not start")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("aiosmtpd did not start in time")
	}
	return s
}

func (s *smtpServer) mails(t *testing.T) []receivedMail {
	t.Helper()
	b, err := os.ReadFile(s.file)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []receivedMail
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		var m receivedMail
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("mail record %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func (s *smtpServer) count(t *testing.T, prefix string) int {
	n := 0
	for _, m := range s.mails(t) {
		if strings.HasPrefix(m.subject(), prefix) {
			n++
		}
	}
	return n
}

func (s *smtpServer) config() SMTPConfig {
	return SMTPConfig{Host: "127.0.0.1", Port: s.port, From: "piot@appliance.test"}
}

// testCert is a CA and a server certificate for 127.0.0.1 it signed.
type testCert struct {
	pool              *x509.CertPool
	certFile, keyFile string
}

func newTestCert(t *testing.T) *testCert {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "piot test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	tc := &testCert{pool: x509.NewCertPool(), certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	tc.pool.AddCert(ca)
	_ = os.WriteFile(tc.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(tc.keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return tc
}

func (tc *testCert) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: tc.pool, MinVersion: tls.VersionTLS12}
}
