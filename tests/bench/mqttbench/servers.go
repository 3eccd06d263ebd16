package main

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
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Names used on both brokers.
const (
	benchOrg  = "bench"
	benchUser = "bench-mqtt"
	topicRoot = "org/" + benchOrg + "/"
	subFilter = topicRoot + "#"
)

// server is one broker under test.
type server struct {
	name     string // "mosquitto" or "appliance"
	p        *proc
	mqttAddr string
	user     string // MQTT credentials; empty for mosquitto (anonymous)
	pass     string
	// vals[k] is the last value published to thing k (T<k+1>); values only
	// grow, so "the thing shows at least v" means "message v was applied".
	vals []int64
	// many are the things of the -things case, made once and shared by
	// its repeats and the sustained run.
	many   []int
	setupS float64 // how long making them took

	// appliance only
	api      *api
	orgID    string
	thingIDs []string
	dataDir  string
	// debugAddr serves the appliance's profiler (-profile); empty when off.
	debugAddr string
	// firstConnect is how long the first MQTT connect took (the appliance
	// checks the org's password with bcrypt once, then caches it).
	firstConnect time.Duration
}

// things returns n things for a case: new ones (empty history buckets, so
// that a case does not pay for the points earlier cases stored), or with
// reuse T1..Tn for every case.
func (s *server) things(ctx context.Context, n int, reuse bool) ([]int, error) {
	var ks []int
	if reuse {
		ks = allIndexes(min(n, len(s.vals)))
	}
	for len(ks) < n {
		k := len(s.vals)
		if s.api != nil {
			if err := s.createThing(k); err != nil {
				return nil, err
			}
		}
		s.vals = append(s.vals, 0)
		ks = append(ks, k)
	}
	if s.api != nil {
		if err := s.checkIngest(ctx, ks); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

// manyThings makes the -things case's things the first time (the
// appliance: through GraphQL, as an admin would) and says how long that
// took.
func (s *server) manyThings(ctx context.Context, n int, logf func(string, ...any)) ([]int, error) {
	if len(s.many) == n {
		return s.many, nil
	}
	start := time.Now()
	ks, err := s.things(ctx, n, false)
	if err != nil {
		return nil, err
	}
	s.many = ks
	s.setupS = time.Since(start).Seconds()
	logf("%s: %d things made and checked in %.1f s", s.name, n, s.setupS)
	return ks, nil
}

func (s *server) topic(k int) string { return fmt.Sprintf("%sT%d/value", topicRoot, k+1) }

func (s *server) pidString() string { return strconv.Itoa(s.p.pid()) }

// stop ends the server gracefully.
func (s *server) stop() error {
	grace := 5 * time.Second
	if s.name == "appliance" {
		grace = 60 * time.Second // it drains journal and history on SIGINT
	}
	err := s.p.stop(os.Interrupt, grace)
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", s.name, err, s.p.logTail())
	}
	return nil
}

// startMosquitto runs mosquitto on a free loopback port with the
// configuration the brief asks for.
func startMosquitto(bin, base string, nagle bool) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(base, "mosquitto.conf")
	cfg := strings.Join([]string{
		"listener " + port + " 127.0.0.1",
		"allow_anonymous true",
		"persistence false",
		"max_inflight_messages 100",
		// mosquitto leaves Nagle's algorithm on by default; Go (the
		// appliance) turns it off. With it on, a PUBACK waits for the
		// client's next packet to carry the TCP ACK: up to one publish
		// interval (10 ms at 100 msg/s per client) of extra latency.
		"set_tcp_nodelay " + strconv.FormatBool(!nagle),
		"log_dest stderr",
		"log_type error",
		"log_type warning",
	}, "\n") + "\n"
	if os.Getuid() == 0 {
		// Switching to the "mosquitto" user would clear the parent-death
		// signal (proc_linux.go) and leave the broker running if this
		// program is killed.
		cfg += "user root\n"
	}
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	p, err := startProc("mosquitto", filepath.Join(base, "mosquitto.log"), bin, os.Environ(), "-c", conf)
	if err != nil {
		return nil, err
	}
	s := &server{name: "mosquitto", p: p, mqttAddr: addr}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p.exited() {
			return nil, fmt.Errorf("mosquitto exited during start: %v\n%s", p.err, p.logTail())
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			t0 := time.Now()
			mc, err := connect(s, "bench-setup")
			if err != nil {
				_ = s.stop()
				return nil, err
			}
			s.firstConnect = time.Since(t0)
			mc.Disconnect(50)
			return s, nil
		}
		if time.Now().After(deadline) {
			_ = s.stop()
			return nil, fmt.Errorf("mosquitto not listening on %s after 10s\n%s", addr, p.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startAppliance runs `piot run` on free loopback ports, then creates the
// org "bench" with MQTT credentials.
func startAppliance(ctx context.Context, bin, base string, bcryptCost int, profile bool, extra []string) (*server, error) {
	dir := filepath.Join(base, "appliance-data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	addrs := make([]string, 6)
	for i := range addrs {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		addrs[i] = a
	}
	httpAddr, mqttAddr := addrs[0], addrs[1]
	// The user's PIOT_… settings must not change what is measured.
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PIOT_") {
			env = append(env, e)
		}
	}
	args := []string{"run", "--data-dir", dir, "--http-addr", httpAddr, "--mqtt-addr", mqttAddr,
		"--mqtts-addr", addrs[2], "--mqtt-ws-addr", addrs[3], "--ssh-addr", addrs[4],
		"--bcrypt-cost", strconv.Itoa(bcryptCost), "--log-level", "warn"}
	debugAddr := ""
	if profile {
		debugAddr = addrs[5]
		args = append(args, "--debug-addr", debugAddr)
	}
	args = append(args, extra...)
	p, err := startProc("appliance", filepath.Join(base, "appliance.log"), bin, env, args...)
	if err != nil {
		return nil, err
	}
	s := &server{name: "appliance", p: p, mqttAddr: mqttAddr, dataDir: dir, debugAddr: debugAddr,
		api: &api{url: "http://" + httpAddr, hc: &http.Client{Timeout: 30 * time.Second}}}
	fail := func(err error) (*server, error) {
		_ = s.stop()
		return nil, fmt.Errorf("appliance: %w\nlog (%s):\n%s", err, p.logPath, p.logTail())
	}

	deadline := time.Now().Add(90 * time.Second)
	for {
		if p.exited() {
			return nil, fmt.Errorf("piot exited during start: %v\n%s", p.err, p.logTail())
		}
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		resp, err := s.api.hc.Get(s.api.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return fail(errors.New("not ready after 90s"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	pw, err := os.ReadFile(filepath.Join(dir, "admin-password"))
	if err != nil {
		return fail(err)
	}
	if err := s.api.login("admin@piot.local", strings.TrimSpace(string(pw))); err != nil {
		return fail(err)
	}
	if err := s.setup(); err != nil {
		return fail(err)
	}
	return s, nil
}

// setup creates the org and its MQTT credentials.
func (s *server) setup() error {
	data, err := s.api.gql(`mutation($n: String!) { createOrg(name: $n, description: "MQTT benchmark") { id } }`, map[string]any{"n": benchOrg})
	if err != nil {
		return fmt.Errorf("createOrg: %w", err)
	}
	s.orgID = str(data, "createOrg", "id")
	data, err = s.api.gql(`mutation($o: ID!, $u: String!) { setOrgMqttCredentials(orgId: $o, username: $u) { username password } }`,
		map[string]any{"o": s.orgID, "u": benchUser})
	if err != nil {
		return fmt.Errorf("setOrgMqttCredentials: %w", err)
	}
	s.user, s.pass = benchUser, str(data, "setOrgMqttCredentials", "password")
	return nil
}

// createThing creates T<k+1>: an enabled sensor thing in the org whose
// value is "v" of the JSON on org/bench/T<k+1>/value.
func (s *server) createThing(k int) error {
	name := fmt.Sprintf("T%d", k+1)
	data, err := s.api.gql(`mutation($n: String!) { createThing(name: $n, type: "sensor") { id } }`, map[string]any{"n": name})
	if err != nil {
		return fmt.Errorf("createThing %s: %w", name, err)
	}
	id := str(data, "createThing", "id")
	if _, err := s.api.gql(`mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`,
		map[string]any{"t": map[string]any{"id": id, "orgId": s.orgID, "enabled": true}}); err != nil {
		return fmt.Errorf("updateThing %s: %w", name, err)
	}
	if _, err := s.api.gql(`mutation($d: ThingSensorDataUpdate!) { updateThingSensorData(data: $d) { id } }`,
		map[string]any{"d": map[string]any{"id": id, "class": "temperature", "unit": "C",
			"measurement_topic": name + "/value", "measurement_value": "v"}}); err != nil {
		return fmt.Errorf("updateThingSensorData %s: %w", name, err)
	}
	s.thingIDs = append(s.thingIDs, id)
	return nil
}

// checkIngest publishes one message to each thing and waits until each
// shows it: the ACL, the topic routing and the JSON value path work, and
// the ingest's topic index knows the things.
func (s *server) checkIngest(ctx context.Context, ks []int) error {
	t0 := time.Now()
	c, err := connect(s, "bench-setup")
	if err != nil {
		return err
	}
	if s.firstConnect == 0 {
		s.firstConnect = time.Since(t0)
	}
	defer c.Disconnect(100)
	for _, k := range ks {
		s.vals[k]++
		t := c.Publish(s.topic(k), 1, false, payload(s.vals[k], 100))
		if !t.WaitTimeout(30*time.Second) || t.Error() != nil {
			return fmt.Errorf("setup publish to %s: %v", s.topic(k), t.Error())
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		vals, err := s.thingValues(ks)
		if err != nil {
			return err
		}
		ok := true
		for k, v := range vals {
			if v < s.vals[k] {
				ok = false
			}
		}
		if ok {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("things never showed the setup values (have %v): is the ingest running?", vals)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func allIndexes(n int) []int {
	ks := make([]int, n)
	for i := range ks {
		ks[i] = i
	}
	return ks
}

// thingValues reads sensor.value of the given things in one GraphQL
// request (aliases t<k>); a value that is not a number counts as -1.
func (s *server) thingValues(ks []int) (map[int]int64, error) {
	out := make(map[int]int64, len(ks))
	// The API bounds a query's tokens and complexity: 50 aliases at a time.
	for chunk := range slices.Chunk(ks, 50) {
		var q strings.Builder
		q.WriteString("{")
		for _, k := range chunk {
			fmt.Fprintf(&q, " t%d: thing(id: %s) { sensor { value } last_seen }", k, strconv.Quote(s.thingIDs[k]))
		}
		q.WriteString(" }")
		data, err := s.api.gql(q.String(), nil)
		if err != nil {
			return nil, err
		}
		for _, k := range chunk {
			v, err := strconv.ParseInt(str(data, "t"+strconv.Itoa(k), "sensor", "value"), 10, 64)
			if err != nil {
				v = -1
			}
			out[k] = v
		}
	}
	return out, nil
}

// api is a minimal client of the appliance's HTTP API.
type api struct {
	url   string
	token string
	hc    *http.Client
}

func (a *api) post(path string, body any) ([]byte, int, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, 0, err
	}
	req, err := http.NewRequest(http.MethodPost, a.url+path, bytes.NewReader(raw))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

func (a *api) login(email, password string) error {
	b, st, err := a.post("/login", map[string]string{"email": email, "password": password})
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	var out struct {
		Token string `json:"token"`
	}
	if st != http.StatusOK || json.Unmarshal(b, &out) != nil || out.Token == "" {
		return fmt.Errorf("login: HTTP %d: %s", st, b)
	}
	a.token = out.Token
	return nil
}

// gql runs a GraphQL operation and returns its data.
func (a *api) gql(query string, vars map[string]any) (map[string]any, error) {
	b, st, err := a.post("/query", map[string]any{"query": query, "variables": vars})
	if err != nil {
		return nil, err
	}
	var out struct {
		Data   map[string]any `json:"data"`
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("HTTP %d, not JSON: %.200s", st, b)
	}
	if len(out.Errors) > 0 {
		return nil, fmt.Errorf("%s (%v)", out.Errors[0].Message, out.Errors[0].Extensions["code"])
	}
	if st != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %.200s", st, b)
	}
	return out.Data, nil
}

// str digs a string out of decoded JSON; "" if absent.
func str(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[p]
	}
	s, _ := cur.(string)
	return s
}

// connect opens one MQTT 3.1.1 connection (clean session, no reconnects).
func connect(s *server, id string) (paho.Client, error) {
	opts := paho.NewClientOptions().AddBroker("tcp://" + s.mqttAddr).SetClientID(id).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetProtocolVersion(4).SetKeepAlive(60 * time.Second).SetConnectTimeout(30 * time.Second).
		SetWriteTimeout(0)
	if s.user != "" {
		opts.SetUsername(s.user).SetPassword(s.pass)
	}
	c := paho.NewClient(opts)
	t := c.Connect()
	if !t.WaitTimeout(60*time.Second) || t.Error() != nil {
		return nil, fmt.Errorf("%s: MQTT connect %s: %v", s.name, id, t.Error())
	}
	return c, nil
}

// payload is a 100-byte (size) JSON document {"v":<n>,"pad":"xxx…"}; the
// appliance's sensor things read "v" (measurement_value).
func payload(v int64, size int) []byte {
	b := make([]byte, 0, size)
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, v, 10)
	b = append(b, `,"pad":"`...)
	for len(b) < size-2 {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}
