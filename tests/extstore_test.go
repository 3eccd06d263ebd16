package tests

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The appliance on an external store: FerretDB v1 (its own server, built
// from the module the appliance embeds) on a real PostgreSQL, the setup
// the README offers besides MongoDB (issue 11).
func TestExternalStore(t *testing.T) {
	pg := startPostgres(t)
	ferret := startFerretDB(t, pg)
	base := fmt.Sprintf("mongodb://piot:%s@%s/farmdb", pg.password, ferret)

	// FerretDB v1 takes PLAIN logins only; the start-up error says so,
	// naming its service once.
	args := []string{"run", "--data-dir", t.TempDir(), "--http-addr", freeAddr(t), "--mqtt-addr", freeAddr(t),
		"--mqtts-addr", freeAddr(t), "--mqtt-ws-addr", freeAddr(t), "--ssh-addr", freeAddr(t), "--store-uri", base, "--store-timeout", "5s"}
	if line := runFails(t, "add authMechanism=PLAIN to the URI", nil, args...); strings.Contains(line, "store: store:") || strings.Contains(line, pg.password) {
		t.Errorf("start-up error: %s", line)
	}

	uri := base + "?authMechanism=PLAIN"
	dir := t.TempDir()
	a := startAppliance(t, startOpts{dataDir: dir, args: []string{"--store-uri", uri}})
	tok := a.login("admin@piot.local", a.adminPassword())
	mqttPW := orgWithMQTT(t, a, tok, "farm", "farm-user")
	farm := orgID(t, a, tok, "farm")
	thing := sensorThing(t, a, tok, farm, "T1")
	shop := gqlID(t, a, tok, "createOrg", `mutation { createOrg(name: "shop", description: "") { id } }`, nil)
	t2 := gqlID(t, a, tok, "createThing", `mutation { createThing(name: "T2", type: "device") { id } }`, nil)
	user := gqlID(t, a, tok, "createUser", `mutation { createUser(email: "u@farm.cz", password: "long-enough") { id } }`, nil)
	if code, msg := gqlErr(t, a, tok, `mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`,
		map[string]any{"t": map[string]any{"id": thing, "piotId": "CHIP-1"}}); code != "" {
		t.Fatalf("set piot id: %s %s", code, msg)
	}

	// Every uniqueness rule answers CONFLICT naming the field, on inserts
	// (FerretDB: code 11000) and updates (PostgreSQL's error 23505).
	updateThing := `mutation($t: ThingUpdate!) { updateThing(thing: $t) { id } }`
	updateOrg := `mutation($o: OrgUpdate!) { updateOrg(org: $o) { id } }`
	conflicts := []struct {
		name, query string
		vars        map[string]any
		want        string
	}{
		{"create thing", `mutation { createThing(name: "T1", type: "sensor") { id } }`, nil, "thing of such name (T1) already exists"},
		{"create org", `mutation { createOrg(name: "farm", description: "") { id } }`, nil, "organization of such name already exists"},
		{"create user", `mutation { createUser(email: "u@farm.cz", password: "long-enough") { id } }`, nil, "user identified by this email already exists"},
		{"rename thing", updateThing, map[string]any{"t": map[string]any{"id": t2, "name": "T1"}}, "Thing of such name already exists"},
		{"piot id", updateThing, map[string]any{"t": map[string]any{"id": t2, "piotId": "CHIP-1"}}, "Thing of such piotId already exists"},
		{"rename org", updateOrg, map[string]any{"o": map[string]any{"id": shop, "name": "farm"}}, "Org of such name already exists"},
		{"org MQTT username", updateOrg, map[string]any{"o": map[string]any{"id": shop, "mqtt_username": "farm-user"}}, "this MQTT username is used by another organization"},
		{"MQTT credentials", `mutation($o: ID!) { setOrgMqttCredentials(orgId: $o, username: "farm-user") { username } }`, map[string]any{"o": shop}, "this MQTT username is used by another organization"},
		{"user email", `mutation($u: UserUpdate!) { updateUser(user: $u) { id } }`, map[string]any{"u": map[string]any{"id": user, "email": "admin@piot.local"}}, "User of such email already exists"},
	}
	for _, c := range conflicts {
		if code, msg := gqlErr(t, a, tok, c.query, c.vars); code != "CONFLICT" || msg != c.want {
			t.Errorf("%s: %s %q, want CONFLICT %q", c.name, code, msg, c.want)
		}
	}

	// Ingest over MQTT into state and history.
	c := mqttClient(t, a.mqttAddr, "farm-user", mqttPW, "extstore")
	for _, v := range []string{"20.5", "21.5"} {
		if p := c.Publish("org/farm/T1/value", 1, false, v); !p.WaitTimeout(5*time.Second) || p.Error() != nil {
			t.Fatalf("publish: %v", p.Error())
		}
	}
	c.Disconnect(100)
	waitReadings(t, a, tok, thing, "20.5", "21.5")

	// The URI's database is the one used: FerretDB keeps it as a schema.
	if got := pg.psql(t, "ferretdb", `SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname IN ('farmdb', 'piot')`); got != "farmdb" {
		t.Errorf("schemas %q, want farmdb only", got)
	}

	// piot store prepare gives every collection the `_id` index FerretDB's
	// lookups can use.
	out, err := exec.Command(piotBin, "store", "prepare", "--store-uri", uri,
		"--postgresql-url", fmt.Sprintf("postgres://piot:%s@%s/ferretdb", pg.password, pg.addr)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "database farmdb") || !strings.Contains(string(out), "things") {
		t.Fatalf("piot store prepare: %v\n%s", err, out)
	}
	table := pg.psql(t, "ferretdb", `SELECT _jsonb->>'table' FROM farmdb._ferretdb_database_metadata WHERE _jsonb->>'_id' = 'things'`)
	plan := pg.psql(t, "ferretdb", fmt.Sprintf(`SET enable_seqscan = off; EXPLAIN SELECT _jsonb FROM farmdb.%q WHERE (_jsonb->'_id') @> '"x"'`, table))
	if !strings.Contains(plan, "piot_idexpr_"+table) {
		t.Errorf("the _id lookup does not use the index:\n%s", plan)
	}

	// A restart finds everything again.
	a.stop()
	b := startAppliance(t, startOpts{dataDir: dir, args: []string{"--store-uri", uri}})
	tok = b.login("admin@piot.local", b.adminPassword())
	_, data, code := b.gql(tok, `{ things(all: true) { name piot_id } orgs { name mqtt_username } }`, nil)
	if code != "" {
		t.Fatalf("after restart: %s", code)
	}
	var names []string
	for _, th := range data["things"].([]any) {
		m := th.(map[string]any)
		names = append(names, fmt.Sprint(m["name"], "/", m["piot_id"]))
	}
	for _, o := range data["orgs"].([]any) {
		m := o.(map[string]any)
		names = append(names, fmt.Sprint(m["name"], "/", m["mqtt_username"]))
	}
	sort.Strings(names)
	if got := strings.Join(names, " "); got != "T1/CHIP-1 T2/ farm/farm-user shop/" {
		t.Errorf("after restart: %s", got)
	}
	waitReadings(t, b, tok, thing, "20.5", "21.5")
}

func gqlErr(t *testing.T, a *appliance, token, query string, vars map[string]any) (code, msg string) {
	t.Helper()
	_, out := post(t, a.url+"/query", token, map[string]any{"query": query, "variables": vars})
	if errs, _ := out["errors"].([]any); len(errs) > 0 {
		msg, _ = errs[0].(map[string]any)["message"].(string)
	}
	return errCode(out), msg
}

func gqlID(t *testing.T, a *appliance, token, field, query string, vars map[string]any) string {
	t.Helper()
	_, data, code := a.gql(token, query, vars)
	if code != "" {
		t.Fatalf("%s: %s", field, code)
	}
	return data[field].(map[string]any)["id"].(string)
}

func waitReadings(t *testing.T, a *appliance, token, thing string, want ...string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		got := readings(t, a, token, thing)
		if strings.Join(got, " ") == strings.Join(want, " ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("readings = %v, want %v", got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// needPostgres fails the test when make test runs it (it installs
// PostgreSQL) and skips it otherwise.
func needPostgres(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("PIOT_REQUIRE_MOSQUITTO") != "" {
		t.Fatalf(format+" (run tests/deps.sh)", args...)
	}
	t.Skipf(format+"; the external store test needs Debian's postgresql", args...)
}

// postgres is a throwaway PostgreSQL cluster on loopback: role piot (with
// a password, checked on TCP) owns database ferretdb.
type postgres struct {
	bin, sock, addr, password string
	port                      int
	cred                      *syscall.Credential
}

// startPostgres runs a cluster in a temporary directory, as the postgres
// user when run by root (PostgreSQL refuses to run as root).
func startPostgres(t *testing.T) *postgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		needPostgres(t, "PostgreSQL is not installed")
	}
	sort.Strings(bins)
	pg := &postgres{bin: filepath.Dir(bins[len(bins)-1]), addr: freeAddr(t), password: "pg-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	_, port, _ := net.SplitHostPort(pg.addr)
	pg.port, _ = strconv.Atoi(port)
	// Not t.TempDir: its parents are private to root.
	dir, err := os.MkdirTemp("", "piot-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			needPostgres(t, "no postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	pg.sock = dir
	data := filepath.Join(dir, "data")
	if out, err := pg.command("initdb", "-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
		"--no-sync", "--no-instructions").CombinedOutput(); err != nil {
		needPostgres(t, "initdb: %v\n%s", err, out)
	}
	srv, err := startDaemon(t, "postgres", pg.command("postgres", "-D", data, "-h", "127.0.0.1", "-p", port, "-k", dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"), os.Interrupt) // SIGINT: fast shutdown
	if err != nil {
		needPostgres(t, "start postgres: %v", err)
	}
	if err := srv.waitReady(30*time.Second, func() bool {
		return pg.command("pg_isready", "-q", "-h", dir, "-p", port).Run() == nil
	}); err != nil {
		needPostgres(t, "%v", err)
	}
	pg.psql(t, "postgres", fmt.Sprintf(`CREATE ROLE piot LOGIN PASSWORD '%s'`, pg.password))
	pg.psql(t, "postgres", `CREATE DATABASE ferretdb OWNER piot`)
	return pg
}

// command runs a PostgreSQL program as the cluster's owner.
func (pg *postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(pg.bin, name), args...)
	cmd.Dir = "/"
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	return cmd
}

// psql runs SQL in db as the superuser over the unix socket and returns
// the output without headers.
func (pg *postgres) psql(t *testing.T, db, sql string) string {
	t.Helper()
	out, err := pg.command("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", pg.sock, "-p", strconv.Itoa(pg.port),
		"-U", "postgres", "-d", db, "-c", sql).CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// startFerretDB runs FerretDB's own server on loopback against pg; it
// takes the PostgreSQL login from each client's PLAIN credentials.
func startFerretDB(t *testing.T, pg *postgres) string {
	t.Helper()
	bin := ferretDBBinary(t)
	addr := freeAddr(t)
	d, err := startDaemon(t, "FerretDB", exec.Command(bin, "--handler=postgresql", "--postgresql-url=postgres://"+pg.addr+"/ferretdb",
		"--listen-addr="+addr, "--debug-addr=-", "--state-dir="+t.TempDir(), "--telemetry=disable", "--log-level=warn"), syscall.SIGTERM)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.waitReady(20*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}); err != nil {
		t.Fatal(err)
	}
	return addr
}

// daemon is a server process that lives until the end of the test.
type daemon struct {
	name string
	log  syncBuffer
	done chan error
}

// startDaemon starts cmd, and stops it with sig when the test ends.
func startDaemon(t *testing.T, name string, cmd *exec.Cmd, sig os.Signal) (*daemon, error) {
	d := &daemon{name: name, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = &d.log, &d.log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { d.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(sig)
		select {
		case <-d.done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("%s did not stop:\n%s", name, d.log.String())
		}
	})
	return d, nil
}

// waitReady polls ready until it holds, the daemon exits or time runs out.
func (d *daemon) waitReady(timeout time.Duration, ready func() bool) error {
	for deadline := time.Now().Add(timeout); !ready(); time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-d.done:
			d.done <- err // for the cleanup
			return fmt.Errorf("%s exited: %v\n%s", d.name, err, d.log.String())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready in %s:\n%s", d.name, timeout, d.log.String())
		}
	}
	return nil
}

// ferretDBBinary builds FerretDB's server from the module version in
// go.mod, once per version: it is kept in the user's cache directory.
func ferretDBBinary(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}} {{.Version}}", "github.com/FerretDB/FerretDB").Output()
	if err != nil {
		t.Fatalf("go list FerretDB: %v", err)
	}
	modDir, version, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	bin := filepath.Join(cache, "piot-tests", "ferretdb-"+version)
	if err := exec.Command(bin, "--version").Run(); err == nil {
		return bin
	}
	// The module cache is read-only, and FerretDB's version package
	// panics at start without build/version/version.txt, which release
	// builds generate: build a writable copy.
	src, err := os.MkdirTemp("", "piot-ferretdb-src-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(src)
	if err := os.CopyFS(src, os.DirFS(modDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "build", "version", "version.txt"), []byte(version+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	// Built beside its final name and renamed, so that a concurrent run
	// never starts half a binary.
	tmp := fmt.Sprintf("%s.%d", bin, os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", tmp, "./cmd/ferretdb")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		os.Remove(tmp)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("building FerretDB took over 5 minutes:\n%s", out)
		}
		t.Fatalf("build FerretDB %s: %v\n%s", version, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}
