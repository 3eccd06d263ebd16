package tests

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/appliance/update"
)

// updateStatus is GET /update as an admin.
func updateStatus(t *testing.T, v *vm, tok string) update.Status {
	t.Helper()
	var st update.Status
	if err := json.Unmarshal([]byte(httpGet(t, v.url()+"/update", tok)), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestApplianceImageUpdate: the image updates itself from A to B with a
// signed bundle built from the same tree under another version, boots B
// from slot b with the data of A, and marks B good once it stayed ready
// (issue 14).
func TestApplianceImageUpdate(t *testing.T) {
	out := imageFiles(t)
	work := t.TempDir()
	img := filepath.Join(work, "piot.img")
	if b, err := exec.Command("cp", "--sparse=always", filepath.Join(out, "piot.img"), img).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, b)
	}
	osRelease, err := os.ReadFile(filepath.Join(out, "os-release"))
	if err != nil {
		t.Fatal(err)
	}
	versionA := regexp.MustCompile(`(?m)^VERSION_ID=(.*)$`).FindStringSubmatch(string(osRelease))[1]

	// Version B: signed with the same (development) key as the image.
	const versionB = "v0.0.0-update-test-b"
	outB := filepath.Join(work, "out-b")
	build := exec.Command("bash", "image/build.sh")
	build.Dir = ".."
	build.Env = append(os.Environ(), "VERSION="+versionB, "PIOT_IMAGE_OUT="+outB)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building version B: %v\n%s", err, b)
	}
	bundle := filepath.Join(outB, "piot-"+versionB+".bundle")
	t.Logf("bundle %.1f MiB", float64(fileSize(t, bundle))/(1<<20))

	base := freePortBase(t)
	disk := "PIOT_QEMU_DISK=" + img
	v, first := bootVM(t, base, disk)
	t.Logf("boot A (first boot): QEMU start -> /readyz %.1f s", first.Seconds())
	v.waitConsole(t, "Press Enter to open the console", time.Minute)
	m := regexp.MustCompile(`password is (\S+)`).FindStringSubmatch(v.console())
	if m == nil {
		t.Fatalf("first boot did not show the admin password:\n%s", v.console())
	}
	admin := func(args ...string) string {
		t.Helper()
		all := append([]string{"admin", "--url", v.url()}, args...)
		out, err := exec.Command(piotBin, all...).CombinedOutput()
		if err != nil {
			t.Fatalf("piot %s: %v\n%s\n--- serial console ---\n%s", strings.Join(all, " "), err, out, v.console())
		}
		return strings.TrimSpace(string(out))
	}
	tok := admin("login", "--email", "admin@piot.local", "--password", m[1])
	admin("--token", tok, "org", "create", "farm", "--description", "North farm")

	// What must outlive every update: an org with MQTT credentials, a
	// thing with readings, an SSH key.
	creds := strings.Fields(strings.Split(admin("--token", tok, "org", "mqtt-credentials", "farm", "farm-user"), "\n")[1])
	farm := orgID(t, v.app(), tok, "farm")
	thing := sensorThing(t, v.app(), tok, farm, "T1")
	pubBin := mosquitto(t, "mosquitto_pub")
	publish := func(value string) {
		t.Helper()
		out, err := exec.Command(pubBin, "-h", "127.0.0.1", "-p", strconv.Itoa(v.base+1883), "-u", "farm-user", "-P", creds[1],
			"-q", "1", "-t", "org/farm/T1/value", "-m", value).CombinedOutput()
		if err != nil {
			t.Fatalf("mosquitto_pub: %v %s", err, out)
		}
	}
	values := []string{"20.5", "21", "21.5"}
	for _, val := range values {
		publish(val)
		time.Sleep(1100 * time.Millisecond) // one reading per second is kept
	}
	waitReadings(t, v.app(), tok, thing, values...)
	_, userKey := keyPair(t)
	var adminID string
	_, data, _ := v.app().gql(tok, `{ users { id email } }`, nil)
	for _, u := range data["users"].([]any) {
		if u.(map[string]any)["email"] == "admin@piot.local" {
			adminID = u.(map[string]any)["id"].(string)
		}
	}
	if _, _, code := v.app().gql(tok, `mutation($u: ID!, $k: String!) { addSshKey(userId: $u, key: $k) { fingerprint } }`,
		map[string]any{"u": adminID, "k": userKey}); code != "" {
		t.Fatalf("addSshKey: %s", code)
	}
	stillThere := func() {
		t.Helper()
		a := v.app()
		waitReadings(t, a, tok, thing, values...)
		_, data, _ := a.gql(tok, `query($u: ID!) { user(id: $u) { ssh_keys { key } } }`, map[string]any{"u": adminID})
		keys := data["user"].(map[string]any)["ssh_keys"].([]any)
		if len(keys) != 1 || !strings.HasPrefix(userKey, keys[0].(map[string]any)["key"].(string)) {
			t.Errorf("SSH keys after the update: %v", keys)
		}
		// The MQTT password still works: the org's credentials were kept.
		// The reading is acknowledged before the next power cut, so it
		// must be there after it.
		next := strconv.Itoa(22 + len(values))
		publish(next)
		values = append(values, next)
	}

	st := updateStatus(t, v, tok)
	if st.Slot != update.SlotA || st.Version != versionA || st.OtherSlotVersion != "" {
		t.Fatalf("status of A: %+v\n%s", st, v.console())
	}

	// Refused before anything is written.
	mkimage := filepath.Join(outB, "mkimage")
	devKey, err := filepath.Abs("../image/keys/signing.pem")
	if err != nil {
		t.Fatal(err)
	}
	strangerPriv, _, err := update.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	stranger := filepath.Join(work, "stranger.pem")
	if err := os.WriteFile(stranger, strangerPriv, 0o600); err != nil {
		t.Fatal(err)
	}
	variant := func(name string, args ...string) []byte {
		t.Helper()
		out := filepath.Join(work, name+".bundle")
		all := append([]string{"bundle", "-slot", filepath.Join(outB, "piot-a.efi"), "-name", "piot.efi", "-o", out}, args...)
		if b, err := exec.Command(mkimage, all...).CombinedOutput(); err != nil {
			t.Fatalf("mkimage %v: %v %s", all, err, b)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	good, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	badSig := bytes.Clone(good)
	badSig[len(update.Magic)+update.KeyIDSize+5] ^= 1
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"bad signature", badSig},
		{"unknown key", variant("stranger", "-key", stranger, "-version", versionB)},
		{"another target", variant("arm", "-key", devKey, "-version", versionB, "-target", "aarch64")},
		// A's version is a commit, which no minimum can be checked against.
		{"below the minimum version", variant("min", "-key", devKey, "-version", versionB, "-min-version", "v9.0.0")},
		{"truncated in its manifest", good[:100]},
	} {
		// The appliance decides on the first bytes and answers without
		// reading on; sending only those keeps the client from writing
		// into a closed connection.
		code, body := postBody(t, v.url()+"/update", tok, tc.body[:min(len(tc.body), 64<<10)], "")
		if code != http.StatusUnprocessableEntity {
			t.Fatalf("%s: %d %s", tc.name, code, body)
		}
		st := updateStatus(t, v, tok)
		if st.OtherSlotVersion != "" || st.Pending != nil || st.LastUpdate == nil || st.LastUpdate.Result != update.ResultRefused {
			t.Fatalf("%s: status %+v %+v", tc.name, st, st.LastUpdate)
		}
		t.Logf("refused (%s): %s", tc.name, st.LastUpdate.Reason)
	}

	// Resume: the first half, as a link that drops, then piot admin
	// update, which continues where the appliance stopped.
	start := time.Now()
	code, body := postBody(t, v.url()+"/update", tok, good[:len(good)/2], "")
	if code != http.StatusConflict || !strings.Contains(body, "INTERRUPTED") {
		t.Fatalf("half a bundle: %d %s", code, body)
	}
	st = updateStatus(t, v, tok)
	if st.Pending == nil || st.Pending.Offset < int64(len(good))/4 || st.Pending.Version != versionB {
		t.Fatalf("pending after half a bundle: %+v", st.Pending)
	}
	t.Logf("interrupted at %d of %d bytes; pending from %d", len(good)/2, len(good), st.Pending.Offset)
	admin("--token", tok, "update", bundle)
	installed := time.Since(start)
	t.Logf("install over HTTP (two parts): %.1f s", installed.Seconds())
	st = updateStatus(t, v, tok)
	if st.LastUpdate == nil || st.LastUpdate.Result != update.ResultInstalled || st.OtherSlotVersion != versionB ||
		st.OtherSlotState != update.StateTrying {
		t.Fatalf("status after install: %+v %+v", st, st.LastUpdate)
	}

	// The install is on disk when POST /update answers: a power cut is
	// as good a reboot as any. The new slot boots and is marked good
	// once it stayed ready.
	rebootInto := func(slot, version, other, otherVersion string) {
		t.Helper()
		v.kill()
		var took time.Duration
		v, took = bootVM(t, base, disk)
		t.Logf("boot %s (after the update): QEMU start -> /readyz %.1f s", version, took.Seconds())
		st := updateStatus(t, v, tok)
		if st.Slot != slot || st.Version != version {
			t.Fatalf("after the update: %+v\n%s", st, v.console())
		}
		stillThere() // A's data, read by the new version
		deadline := time.Now().Add(2 * time.Minute)
		for st.LastUpdate == nil || st.LastUpdate.Result != update.ResultGood {
			if time.Now().After(deadline) {
				t.Fatalf("%s never marked good: %+v %+v\n%s", version, st, st.LastUpdate, v.console())
			}
			time.Sleep(2 * time.Second)
			st = updateStatus(t, v, tok)
		}
		t.Logf("%s marked good %.1f s after QEMU start", version, time.Since(v.start).Seconds())
		if st.OtherSlotVersion != otherVersion || st.OtherSlotState != update.StateGood {
			t.Errorf("slot %s after %s was marked good: %q %q", other, version, st.OtherSlotVersion, st.OtherSlotState)
		}
	}
	rebootInto(update.SlotB, versionB, update.SlotA, versionA)

	// A second update goes back into slot a, replacing A.
	const versionC = "v0.0.0-update-test-c"
	outC := filepath.Join(work, "out-c")
	build = exec.Command("bash", "image/build.sh")
	build.Dir = ".."
	build.Env = append(os.Environ(), "VERSION="+versionC, "PIOT_IMAGE_OUT="+outC)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building version C: %v\n%s", err, b)
	}
	admin("--token", tok, "update", filepath.Join(outC, "piot-"+versionC+".bundle"))
	rebootInto(update.SlotA, versionC, update.SlotB, versionB)

	// D's piot run exits at start: it is installed and boots, but must
	// not be marked good, and C must come back by itself.
	const versionD = "v0.0.0-update-test-d"
	outD := filepath.Join(work, "out-d")
	build = exec.Command("bash", "image/build.sh")
	build.Dir = ".."
	build.Env = append(os.Environ(), "VERSION="+versionD, "PIOT_IMAGE_OUT="+outD, "PIOT_GO_TAGS=piot_failrun")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building version D: %v\n%s", err, b)
	}
	bundleD := filepath.Join(outD, "piot-"+versionD+".bundle")
	dataD, err := os.ReadFile(bundleD)
	if err != nil {
		t.Fatal(err)
	}

	// A power cut while slot b is being written: the body is held open
	// after 40 %, and QEMU is killed once the appliance saved progress.
	pr, pw := io.Pipe()
	posted := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, v.url()+"/update", pr)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		posted <- err
	}()
	if _, err := pw.Write(dataD[:len(dataD)*2/5]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for st := updateStatus(t, v, tok); st.Pending == nil || st.Pending.Offset == 0; st = updateStatus(t, v, tok) {
		if time.Now().After(deadline) {
			t.Fatalf("no progress saved while writing: %+v", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	v.kill()
	pw.CloseWithError(io.ErrUnexpectedEOF)
	<-posted
	// From here on a reboot of the guest restarts it, as on a real box.
	reboots := "PIOT_QEMU_REBOOT=1"
	v, _ = bootVM(t, base, disk, reboots)
	st = updateStatus(t, v, tok)
	if st.Slot != update.SlotA || st.Version != versionC || st.OtherSlotVersion != versionB || st.OtherSlotState != update.StateGood {
		t.Fatalf("after a power cut while writing: %+v\n%s", st, v.console())
	}
	t.Logf("power cut while writing: C still runs from slot a, B intact in slot b; pending %+v", st.Pending)
	admin("--token", tok, "update", bundleD)
	st = updateStatus(t, v, tok)
	if st.LastUpdate == nil || st.LastUpdate.Result != update.ResultInstalled || st.OtherSlotVersion != versionD {
		t.Fatalf("installing D after the power cut: %+v %+v", st, st.LastUpdate)
	}

	// A reboot at a chosen time is kept by piot init, shown, and can be
	// cancelled.
	at := time.Now().Add(time.Hour).Truncate(time.Second)
	admin("--token", tok, "reboot", "--at", at.Format(time.RFC3339))
	if st := updateStatus(t, v, tok); st.RebootAt == nil || !st.RebootAt.Equal(at) {
		t.Fatalf("scheduled reboot not shown: %+v", st.RebootAt)
	}
	admin("--token", tok, "reboot", "--cancel")
	if st := updateStatus(t, v, tok); st.RebootAt != nil {
		t.Fatalf("cancelled reboot still shown: %v", st.RebootAt)
	}

	// Rollback: D boots from slot b and fails three times; systemd-boot
	// then boots C from slot a, which says why.
	rebooted := time.Now()
	admin("--token", tok, "reboot")
	for c := (&http.Client{Timeout: time.Second}); ; time.Sleep(200 * time.Millisecond) {
		resp, err := c.Get(v.url() + "/readyz")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Since(rebooted) > time.Minute {
			t.Fatalf("still up a minute after the reboot:\n%s", v.console())
		}
	}
	if err := v.waitReady(6 * time.Minute); err != nil {
		t.Fatalf("no rollback: %v\n%s", err, v.console())
	}
	rollback := time.Since(rebooted)
	st = updateStatus(t, v, tok)
	if st.Slot != update.SlotA || st.Version != versionC || st.LastUpdate == nil || st.LastUpdate.Result != update.ResultRolledBack ||
		st.OtherSlotVersion != versionD || st.OtherSlotState != update.StateBad {
		t.Fatalf("after D: %+v %+v\n%s", st, st.LastUpdate, v.console())
	}
	for _, want := range []string{"watchdog armed", "update on trial in slot b failed", "piot run exited 3 times", "update rolled back"} {
		if !strings.Contains(v.console(), want) {
			t.Errorf("console lacks %q:\n%s", want, v.console())
		}
	}
	if !strings.Contains(st.LastUpdate.Reason, "piot run exited") {
		t.Errorf("rollback reason: %q", st.LastUpdate.Reason)
	}
	if body := httpGet(t, v.url()+"/readyz", ""); !strings.Contains(body, "rolled back") {
		t.Errorf("/readyz does not say the update was rolled back: %q", body)
	}
	if out := admin("--token", tok, "status"); !strings.Contains(out, "last update:  rolled-back, version "+versionD) ||
		!strings.Contains(out, "other slot:   "+versionD+" (bad)") || !strings.Contains(out, "built with the piot_failrun tag") {
		t.Errorf("piot admin status after the rollback:\n%s", out)
	}
	stillThere()
	t.Logf("rollback: reboot with D installed -> C ready again %.1f s (%s)", rollback.Seconds(), st.LastUpdate.Reason)
}

// postBody POSTs raw bytes as an admin, optionally from an offset.
func postBody(t *testing.T, url, tok string, body []byte, contentRange string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if contentRange != "" {
		req.Header.Set("Content-Range", contentRange)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}
