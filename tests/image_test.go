package tests

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// vm is one boot of the appliance image under QEMU (run-qemu.sh).
type vm struct {
	t      *testing.T
	base   int
	cmd    *exec.Cmd
	serial *syncBuffer
	done   chan error
	start  time.Time
}

func (v *vm) port(p int) string { return "127.0.0.1:" + strconv.Itoa(v.base+p) }
func (v *vm) url() string       { return "http://" + v.port(80) }

// imageFiles are the build's outputs the test boots; `make test` builds
// them first (make image).
func imageFiles(t *testing.T) string {
	out, err := filepath.Abs("../image/out")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"piot.img", "vmlinux", "initramfs.cpio.zst", "cmdline"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			if os.Getenv("PIOT_REQUIRE_MOSQUITTO") != "" {
				t.Fatalf("image not built (make image): %v", err)
			}
			t.Skipf("image not built (make image): %v", err)
		}
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatalf("qemu-system-x86_64: %v (make image installs it)", err)
	}
	return out
}

// freePortBase finds a base whose forwarded ports are all free.
func freePortBase(t *testing.T) int {
	for try := 0; try < 50; try++ {
		base := 20000 + 100*int(time.Now().UnixNano()%300)
		ok := true
		for _, p := range []int{22, 80, 443, 1883, 8083, 8883} {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+p))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			return base
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no free port range")
	return 0
}

// bootVM starts QEMU and waits for /readyz; it returns the boot time.
func bootVM(t *testing.T, base int, env ...string) (*vm, time.Duration) {
	t.Helper()
	v := startVM(t, base, env...)
	if err := v.waitReady(3 * time.Minute); err != nil {
		t.Fatalf("%v\n--- serial console ---\n%s", err, v.console())
	}
	return v, time.Since(v.start)
}

// startVM starts QEMU with run-qemu.sh; the serial console is collected.
func startVM(t *testing.T, base int, env ...string) *vm {
	t.Helper()
	v := &vm{t: t, base: base, serial: &syncBuffer{}, done: make(chan error, 1)}
	v.cmd = exec.Command("bash", "../image/run-qemu.sh")
	v.cmd.Env = append(os.Environ(), append([]string{"PIOT_QEMU_PORT_BASE=" + strconv.Itoa(base)}, env...)...)
	v.cmd.Stdout, v.cmd.Stderr = v.serial, v.serial
	v.start = time.Now()
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { v.done <- v.cmd.Wait() }()
	t.Cleanup(v.kill)
	return v
}

func (v *vm) waitReady(limit time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case err := <-v.done:
			v.done <- err
			return fmt.Errorf("QEMU exited during boot: %v", err)
		default:
		}
		if resp, err := c.Get(v.url() + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("appliance not ready after %s", limit)
}

// console is the serial output without terminal escapes.
func (v *vm) console() string {
	return regexp.MustCompile(`\x1b\[[0-9;=?]*[a-zA-Z]`).ReplaceAllString(strings.ReplaceAll(v.serial.String(), "\r", ""), "")
}

func (v *vm) waitConsole(t *testing.T, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(v.console(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("serial console never showed %q:\n%s", want, v.console())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kill is a power cut.
func (v *vm) kill() {
	if v.cmd.ProcessState == nil {
		_ = v.cmd.Process.Kill()
	}
	select {
	case err := <-v.done:
		v.done <- err
	case <-time.After(10 * time.Second):
	}
}

// waitPoweredOff waits for the guest to power the machine off.
func (v *vm) waitPoweredOff(t *testing.T, limit time.Duration) {
	t.Helper()
	select {
	case err := <-v.done:
		v.done <- err
		if err != nil {
			t.Fatalf("QEMU: %v\n%s", err, v.console())
		}
	case <-time.After(limit):
		t.Fatalf("not powered off after %s:\n%s", limit, v.console())
	}
}

// app lets the API helpers of the other end-to-end tests talk to the VM.
func (v *vm) app() *appliance {
	return &appliance{t: v.t, url: v.url(), out: v.serial}
}

// tmuxSSH opens the console over OpenSSH in a tmux pane.
type tmuxSSH struct {
	t       *testing.T
	session string
}

func openConsole(t *testing.T, addr, keyFile string) *tmuxSSH {
	t.Helper()
	host, port := hostPort(t, addr)
	s := &tmuxSSH{t: t, session: fmt.Sprintf("piot-image-%d", time.Now().UnixNano())}
	cmd := fmt.Sprintf("ssh -tt -p %s -i %s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o BatchMode=yes admin@%s", port, keyFile, host)
	if out, err := exec.Command("tmux", "new-session", "-d", "-s", s.session, "-x", "110", "-y", "32", cmd).CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("tmux", "kill-session", "-t", s.session).Run() })
	return s
}

func (s *tmuxSSH) screen() string {
	out, _ := exec.Command("tmux", "capture-pane", "-p", "-t", s.session).Output()
	return string(out)
}

func (s *tmuxSSH) waitFor(want string) {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(s.screen(), want) {
		if time.Now().After(deadline) {
			s.t.Fatalf("console never showed %q:\n%s", want, s.screen())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (s *tmuxSSH) keys(keys ...string) {
	s.t.Helper()
	for _, k := range keys {
		if err := exec.Command("tmux", "send-keys", "-t", s.session, k).Run(); err != nil {
			s.t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

func (s *tmuxSSH) text(txt string) {
	s.t.Helper()
	if err := exec.Command("tmux", "send-keys", "-t", s.session, "-l", txt).Run(); err != nil {
		s.t.Fatal(err)
	}
}

// piotAdmin runs `piot admin` against the VM over HTTPS.
func piotAdmin(t *testing.T, v *vm, ca string, args ...string) string {
	t.Helper()
	all := append([]string{"admin", "--url", "https://" + v.port(443), "--ca-file", ca}, args...)
	out, err := exec.Command(piotBin, all...).CombinedOutput()
	if err != nil {
		t.Fatalf("piot %s: %v\n%s", strings.Join(all, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// httpGet is getAuth that expects 200.
func httpGet(t *testing.T, url, bearer string) string {
	t.Helper()
	st, body := getAuth(t, url, bearer)
	if st != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, st, body)
	}
	return body
}

// dataPartition is the data partition's place in the image: its first
// sector and its size, in 512-byte sectors.
func dataPartition(t *testing.T, img string) (start, sectors int64) {
	t.Helper()
	out, err := exec.Command("partx", "-g", "-o", "START,SECTORS", "-n", "2", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		t.Fatalf("partx: %q", out)
	}
	start, _ = strconv.ParseInt(f[0], 10, 64)
	sectors, _ = strconv.ParseInt(f[1], 10, 64)
	return start, sectors
}

// dataPartitionFile reads a file of the (powered off) image's data
// partition with debugfs, which needs no mount and no root.
func dataPartitionFile(t *testing.T, img, name string) (data string, mode string) {
	t.Helper()
	start, _ := dataPartition(t, img)
	part := filepath.Join(t.TempDir(), "data.part")
	if out, err := exec.Command("dd", "if="+img, "of="+part, "bs=512", "skip="+strconv.FormatInt(start, 10), "conv=sparse", "status=none").CombinedOutput(); err != nil {
		t.Fatalf("dd: %v %s", err, out)
	}
	cat, err := exec.Command("debugfs", "-R", "cat /"+name, part).Output()
	if err != nil {
		t.Fatalf("debugfs cat %s: %v", name, err)
	}
	stat, _ := exec.Command("debugfs", "-R", "stat /"+name, part).Output()
	m := regexp.MustCompile(`Mode:\s+(\d+)`).FindStringSubmatch(string(stat))
	if m == nil {
		t.Fatalf("debugfs stat %s: %s", name, stat)
	}
	os.Remove(part)
	return strings.TrimSpace(string(cat)), m[1]
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// dataPartitionSizes are the data partition's size in the GPT and its
// file system's, from the powered-off image.
func dataPartitionSizes(t *testing.T, img string) (part, fs int64) {
	t.Helper()
	start, sectors := dataPartition(t, img)
	part = sectors * 512
	// The ext4 superblock, 1024 bytes into the partition.
	f2, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	sb := make([]byte, 1024)
	if _, err := f2.ReadAt(sb, start*512+1024); err != nil {
		t.Fatal(err)
	}
	if binary.LittleEndian.Uint16(sb[56:]) != 0xEF53 {
		t.Fatal("no ext4 superblock in the data partition")
	}
	bsize := int64(1024) << binary.LittleEndian.Uint32(sb[24:])
	blocks := int64(binary.LittleEndian.Uint32(sb[4:]))
	if binary.LittleEndian.Uint32(sb[0x60:])&0x80 != 0 {
		blocks |= int64(binary.LittleEndian.Uint32(sb[0x150:])) << 32
	}
	return part, blocks * bsize
}

// residentMemory is piot run's RSS from its /metrics.
func residentMemory(t *testing.T, metrics string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^process_resident_memory_bytes (\S+)$`).FindStringSubmatch(metrics)
	if m == nil {
		t.Fatal("/metrics lacks process_resident_memory_bytes")
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// corruptSuperblock overwrites the data file system's primary superblock.
func corruptSuperblock(t *testing.T, img string) {
	t.Helper()
	start, _ := dataPartition(t, img)
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := make([]byte, 1024)
	for i := range junk {
		junk[i] = 0xA5
	}
	if _, err := f.WriteAt(junk, start*512+1024); err != nil {
		t.Fatal(err)
	}
}

func hostKeyOf(t *testing.T, addr string) string {
	t.Helper()
	var fp string
	cfg := &ssh.ClientConfig{User: "probe", Auth: nil, Timeout: 10 * time.Second,
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error { fp = ssh.FingerprintSHA256(k); return nil }}
	c, err := ssh.Dial("tcp", addr, cfg)
	if err == nil {
		c.Close()
	}
	if fp == "" {
		t.Fatalf("no SSH host key from %s: %v", addr, err)
	}
	return fp
}

// The appliance image, booted as a user would: UEFI firmware, systemd-boot,
// piot init, the first boot's provisioning, the console over SSH with the
// key from the kernel command line, the API over HTTPS, MQTTS, the
// adapter over HTTP, an OS setting, power off from the console, a second
// boot with everything still there, a power cut during MQTT ingest, and a
// destroyed superblock.
func TestApplianceImage(t *testing.T) {
	out := imageFiles(t)
	for _, bin := range []string{"ssh", "tmux", "debugfs", "partx"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not installed (tests/deps.sh)", bin)
		}
	}
	pubBin := mosquitto(t, "mosquitto_pub")
	work := t.TempDir()
	img := filepath.Join(work, "piot.img")
	if b, err := exec.Command("cp", "--sparse=always", filepath.Join(out, "piot.img"), img).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, b)
	}
	// Written to a larger disk, as to a USB stick: the data partition
	// grows to fill it at the first boot.
	if err := os.Truncate(img, fileSize(t, img)+512<<20); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"piot.img", "piot-a.efi", "vmlinuz", "initramfs.cpio.zst", "piot"} {
		if st, err := os.Stat(filepath.Join(out, f)); err == nil {
			t.Logf("size %-20s %6.1f MiB", f, float64(st.Size())/(1<<20))
		}
	}

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := ssh.MarshalPrivateKey(priv, "")
	keyFile := filepath.Join(work, "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, _ := ssh.NewPublicKey(pub)
	adminKey := "piot.admin_key=ssh-ed25519+" + base64.StdEncoding.EncodeToString(sshPub.Marshal()) + "+e2e@host"
	base := freePortBase(t)
	disk := "PIOT_QEMU_DISK=" + img

	// First boot: the blank data partition is formatted, secrets made.
	v, first := bootVM(t, base, disk, "PIOT_QEMU_APPEND="+adminKey)
	t.Logf("boot 1 (UEFI, first boot: format + provisioning): QEMU start -> /readyz %.1f s", first.Seconds())
	v.waitConsole(t, "formatting the data partition", time.Second)
	v.waitConsole(t, "now fills the disk", time.Second)
	v.waitConsole(t, "Press Enter to open the console", time.Minute)
	m := regexp.MustCompile(`password is (\S+)`).FindStringSubmatch(v.console())
	if m == nil {
		t.Fatalf("first boot did not show the admin password:\n%s", v.console())
	}
	adminPassword := m[1]
	hostKey := hostKeyOf(t, v.port(22))

	con := openConsole(t, v.port(22), keyFile)
	con.waitFor("Dashboard")
	con.waitFor("admin@piot.local")

	ca := filepath.Join(work, "ca.crt")
	caPEM := httpGet(t, v.url()+"/ca.crt", "")
	if err := os.WriteFile(ca, []byte(caPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	tok := piotAdmin(t, v, ca, "login", "--email", "admin@piot.local", "--password", adminPassword)
	piotAdmin(t, v, ca, "--token", tok, "org", "create", "farm", "--description", "North farm")
	creds := strings.Fields(strings.Split(piotAdmin(t, v, ca, "--token", tok, "org", "mqtt-credentials", "farm", "farm-user"), "\n")[1])
	if len(creds) != 2 || creds[0] != "farm-user" {
		t.Fatalf("mqtt-credentials: %v", creds)
	}
	mqttPassword := creds[1]
	a := v.app()
	farm := orgID(t, a, tok, "farm")
	thing := sensorThing(t, a, tok, farm, "T1")

	pubOut, err := exec.Command(pubBin, "-h", "127.0.0.1", "-p", strconv.Itoa(base+8883), "--cafile", ca,
		"-u", "farm-user", "-P", mqttPassword, "-q", "1", "-t", "org/farm/T1/value", "-m", "21.5").CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub over MQTTS: %v %s", err, pubOut)
	}
	waitValue := func(a *appliance, want string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; {
			_, data, code := a.gql(tok, `query($id: ID!) { thing(id: $id) { sensor { value } } }`, map[string]any{"id": thing})
			if code == "" && data["thing"].(map[string]any)["sensor"].(map[string]any)["value"] == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("sensor value never became %s (%s %v)", want, code, data)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	waitValue(a, "21.5")
	if got := readings(t, a, tok, thing); len(got) != 1 || got[0] != "21.5" {
		t.Fatalf("history after MQTTS: %v", got)
	}

	// A legacy PIOT device over plain HTTP.
	st, body := post(t, v.url()+"/adapter", "", map[string]any{"device": "CHIP1", "readings": []any{map[string]any{"address": "A1", "t": 4.5}}})
	if st != http.StatusAccepted {
		t.Fatalf("adapter packet: %d %v", st, body)
	}
	thingID(t, a, tok, "CHIP1") // registered by the packet

	// An OS setting from the console's System screen.
	con.keys("7")
	con.waitFor("Listeners")
	con.keys("o")
	con.waitFor("Operating system")
	con.keys("C-u")
	con.text("barn-gateway")
	con.keys("C-s")
	con.waitFor("OS settings applied")

	// Power off from the console.
	con.keys("P")
	con.waitFor("Power the appliance off now?")
	con.keys("y")
	v.waitPoweredOff(t, 90*time.Second)
	if !strings.Contains(v.console(), "powering off") {
		t.Fatalf("no clean power off on the console:\n%s", v.console())
	}

	// The secrets are on the data partition, 0600.
	metricsToken, mode := dataPartitionFile(t, img, "metrics-token")
	if mode != "0600" && mode != "100600" {
		t.Fatalf("metrics-token mode %s", mode)
	}
	if yaml, _ := dataPartitionFile(t, img, "piot.yaml"); !strings.Contains(yaml, "hostname: barn-gateway") {
		t.Fatalf("piot.yaml does not keep the host name:\n%s", yaml)
	}

	// Second boot: everything is still there.
	v, second := bootVM(t, base, disk, "PIOT_QEMU_APPEND="+adminKey)
	t.Logf("boot 2 (UEFI): QEMU start -> /readyz %.1f s", second.Seconds())
	time.Sleep(10 * time.Second) // idle, as an appliance mostly is
	idleRSS := residentMemory(t, httpGet(t, v.url()+"/metrics", metricsToken))
	v.waitConsole(t, "— barn-gateway", time.Minute)
	if strings.Contains(v.console(), "formatting") {
		t.Fatal("second boot formatted the data partition")
	}
	if hk := hostKeyOf(t, v.port(22)); hk != hostKey {
		t.Fatalf("SSH host key changed: %s -> %s", hostKey, hk)
	}
	if got := httpGet(t, v.url()+"/ca.crt", ""); got != caPEM {
		t.Fatal("CA certificate changed across reboots")
	}
	con = openConsole(t, v.port(22), keyFile)
	con.waitFor("Dashboard")
	a = v.app()
	waitValue(a, "21.5")
	thingID(t, a, tok, "CHIP1")
	metrics := httpGet(t, v.url()+"/metrics", metricsToken)
	if !strings.Contains(metrics, `piot_sensor_value{class="temperature",org="farm",thing="T1",unit="C"} 21.5`) {
		t.Fatalf("/metrics lacks the sensor value:\n%.2000s", metrics)
	}
	t.Logf("piot run in the image: resident memory %.1f MiB idle after boot (goal 60 MiB), %.1f MiB after the console, API and MQTT work above", idleRSS/(1<<20), residentMemory(t, metrics)/(1<<20))

	// A power cut during MQTT ingest: every acknowledged reading survives.
	c := mqttClient(t, v.port(1883), "farm-user", mqttPassword, "powercut")
	var mu sync.Mutex
	acked := map[string]bool{}
	var n atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			val := strconv.Itoa(1000 + i)
			p := c.Publish("org/farm/T1/value", 1, false, val)
			if !p.WaitTimeout(20*time.Second) || p.Error() != nil {
				return // the power is gone
			}
			mu.Lock()
			acked[val] = true
			mu.Unlock()
			n.Add(1)
		}
	}()
	for deadline := time.Now().Add(2 * time.Minute); n.Load() < 200; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d readings acknowledged in 2 minutes", n.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	v.kill() // the power cut, mid-stream
	close(stop)
	wg.Wait()
	c.Disconnect(0)
	mu.Lock()
	ackedCount := len(acked)
	mu.Unlock()

	// Third boot, direct kernel: the journal replays, no fsck is needed.
	v, direct := bootVM(t, base, disk, "PIOT_QEMU_MODE=kernel")
	t.Logf("boot 3 (direct kernel, after the power cut): QEMU start -> /readyz %.1f s", direct.Seconds())
	a = v.app()
	for deadline := time.Now().Add(60 * time.Second); ; {
		got := map[string]bool{}
		for _, r := range readings(t, a, tok, thing) {
			got[r] = true
		}
		missing := 0
		for val := range acked {
			if !got[val] {
				missing++
			}
		}
		if missing == 0 {
			t.Logf("power cut after %d acknowledged MQTT readings: all in history", ackedCount)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged readings lost in the power cut", missing, ackedCount)
		}
		time.Sleep(500 * time.Millisecond)
	}
	con = openConsole(t, v.port(22), keyFile)
	con.waitFor("Dashboard")
	con.keys("7")
	con.waitFor("Listeners")
	con.keys("P")
	con.waitFor("Power the appliance off now?")
	con.keys("y")
	v.waitPoweredOff(t, 90*time.Second)

	partBytes, fsBytes := dataPartitionSizes(t, img)
	if fsBytes+32<<20 < partBytes || partBytes < 1500<<20 {
		t.Fatalf("data partition %d MiB, its file system %d MiB: not grown to the disk", partBytes>>20, fsBytes>>20)
	}
	t.Logf("data partition grown at the first boot to the disk's end: %d MiB, its file system %d MiB", partBytes>>20, fsBytes>>20)

	// A destroyed superblock: the boot stops with a clear message, once,
	// and leaves the disk alone; piot.data=repair brings the data back.
	corruptSuperblock(t, img)
	v = startVM(t, base, disk, "PIOT_QEMU_MODE=kernel")
	v.waitConsole(t, "CANNOT BE MOUNTED", 2*time.Minute)
	v.waitConsole(t, "piot.data=repair", time.Second)
	time.Sleep(10 * time.Second)
	select {
	case err := <-v.done:
		t.Fatalf("QEMU ended after the data error (%v):\n%s", err, v.console())
	default:
	}
	if k := strings.Count(v.console(), "starting\n"); k != 1 {
		t.Fatalf("the appliance started %d times: a boot loop\n%s", k, v.console())
	}
	if strings.Contains(v.console(), "formatting") {
		t.Fatal("a damaged data partition was formatted")
	}
	v.kill()
	v, _ = bootVM(t, base, disk, "PIOT_QEMU_MODE=kernel", "PIOT_QEMU_APPEND=piot.data=repair")
	v.waitConsole(t, "piot.data=repair", time.Second)
	a = v.app()

	thingID(t, a, tok, "CHIP1")
	if got := readings(t, a, tok, thing); len(got) < ackedCount {
		t.Fatalf("after the repair: %d readings, want at least %d", len(got), ackedCount)
	}
	t.Logf("the data partition was repaired from a backup superblock; its data is intact")
}

// A configuration piot run would refuse, on a separate data disk: the
// appliance still comes up, with the last good configuration or the
// image's defaults, and says so on the console; the file is kept.
func TestApplianceImageBadConfig(t *testing.T) {
	imageFiles(t)
	seed := t.TempDir()
	if err := os.WriteFile(filepath.Join(seed, "piot.yaml"), []byte("hostname: depot\ncolour: blue\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "data.img")
	if err := os.WriteFile(data, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(data, 256<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-L", "piot-data", "-d", seed, data).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	img := filepath.Join(t.TempDir(), "piot.img")
	if b, err := exec.Command("cp", "--sparse=always", "../image/out/piot.img", img).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, b)
	}
	v, took := bootVM(t, freePortBase(t), "PIOT_QEMU_DISK="+img, "PIOT_QEMU_DATA="+data, "PIOT_QEMU_MODE=kernel")
	t.Logf("direct kernel boot with a separate data disk: %.1f s", took.Seconds())
	v.waitConsole(t, `unknown key "colour"`, time.Second)
	v.waitConsole(t, "It is kept as /data/piot.yaml.invalid-", time.Second)
	v.waitConsole(t, "— piot", time.Minute) // the image's default host name
	if strings.Contains(v.console(), "formatting") {
		t.Fatal("the separate data disk was formatted")
	}
}
