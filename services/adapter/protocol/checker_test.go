package protocol

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

const testKey = "1234567890123456"

const ownKey = "own-key-16-bytes"

func encrypt(t *testing.T, key, plain string) []byte {
	t.Helper()
	ct, err := EncryptECB([]byte(key), []byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

// The catalogue of packets the checker takes or refuses, with the reason
// each refusal is counted under; the edge adapter answers devices from it
// before anything reaches the appliance.
func TestDevice(t *testing.T) {
	many := `{"device":"d","readings":[` + strings.Repeat(`{"address":"a","t":1},`, MaxReadings) + `{"address":"b","t":1}]}`
	for _, c := range []struct {
		name   string
		cfg    Config
		body   []byte
		hint   string
		device string
		reason string
	}{
		{name: "plaintext", body: []byte(`{"device":"Device123","readings":[{"address":"a","t":1}]}`), device: "Device123"},
		{name: "short names", body: []byte(`{"d":"d1","r":[{"a":"x","t":1.5,"h":2,"p":3}]}`), device: "d1"},
		{name: "trailing bytes", body: []byte(`{"device":"d"} trailing`), device: "d"},
		{name: "empty device", body: []byte(`{"readings":[]}`), reason: ReasonEmptyDevice},
		{name: "invalid device", body: []byte(`{"device":"a/b"}`), reason: ReasonInvalidName},
		{name: "invisible device", body: []byte(`{"device":"boiler\u202egnp"}`), reason: ReasonInvalidName},
		{name: "invalid address", body: []byte(`{"device":"d","readings":[{"address":"a#","t":1}]}`), reason: ReasonInvalidName},
		{name: "too many readings", body: []byte(many), reason: ReasonTooManyReads},
		{name: "not an object", body: []byte(`[]`), reason: ReasonBadJSON},
		{name: "empty", body: nil, reason: ReasonBadJSON},
		{name: "broken JSON with a key", cfg: Config{AESKey: testKey}, body: []byte(`{"device":"x",}`), reason: ReasonBadJSON},
		{name: "time out of range", body: []byte(`{"device":"d","time":-1}`), reason: ReasonBadJSON},
		{name: "ciphertext without a key", body: encrypt(t, testKey, `{"device":"d"}`), reason: ReasonBadJSON},
		{name: "encrypted", cfg: Config{AESKey: testKey}, body: encrypt(t, testKey, `{"device":"enc1"}`), device: "enc1"},
		{name: "bad length", cfg: Config{AESKey: testKey}, body: []byte("not json at all"), reason: ReasonBadLength},
		{name: "bad padding", cfg: Config{AESKey: testKey}, body: encrypt(t, testKey, `{"device":"bad"}`)[:16], reason: ReasonBadPadding},
		{name: "encrypted, not JSON", cfg: Config{AESKey: testKey}, body: encrypt(t, testKey, "hello"), reason: ReasonBadJSON},
		{name: "own key", cfg: Config{DeviceKeys: map[string]string{"kd": ownKey}}, body: encrypt(t, ownKey, `{"device":"kd"}`), device: "kd"},
		{name: "own key, hinted", cfg: Config{AESKey: testKey, DeviceKeys: map[string]string{"kd": ownKey}}, body: encrypt(t, ownKey, `{"device":"kd"}`), hint: "kd", device: "kd"},
		{name: "own key opening another device's packet", cfg: Config{DeviceKeys: map[string]string{"kd": ownKey}}, body: encrypt(t, ownKey, `{"device":"other"}`), reason: ReasonBadPadding},
		{name: "own key's device in plaintext", cfg: Config{DeviceKeys: map[string]string{"kd": ownKey}}, body: []byte(`{"device":"kd"}`), reason: ReasonWrongKey},
		{name: "own key's device with the global key", cfg: Config{AESKey: testKey, DeviceKeys: map[string]string{"kd": ownKey}}, body: encrypt(t, testKey, `{"device":"kd"}`), reason: ReasonWrongKey},
		// Keys stand for the appliance's, which its things hold.
		{name: "keys looked up", cfg: Config{DeviceKeys: map[string]string{"kd": testKey}, Keys: keyMap{"kd": ownKey}}, body: encrypt(t, ownKey, `{"device":"kd"}`), device: "kd"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ch, err := NewChecker(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			dev, out := ch.Device(c.body, c.hint)
			if dev != c.device || out.Reason != c.reason {
				t.Fatalf("device %q, outcome %+v; want %q, reason %q", dev, out, c.device, c.reason)
			}
			if c.reason != "" && (out.Status != http.StatusBadRequest || out.Msg == "") {
				t.Fatalf("refusal %+v", out)
			}
		})
	}
}

func TestBadKeys(t *testing.T) {
	for cfg, msg := range map[*Config]string{
		{AESKey: "short"}: "adapter: AES key must be exactly 16 bytes, got 5",
		{DeviceKeys: map[string]string{"kd": "short"}}: "adapter: the AES key of device kd must be exactly 16 bytes, got 5",
	} {
		if _, err := NewChecker(*cfg); err == nil || err.Error() != msg {
			t.Errorf("%+v: %v, want %q", *cfg, err, msg)
		}
	}
}

func TestLimit(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ch, err := NewChecker(Config{MinInterval: 10 * time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if out := ch.Limit("d"); out.Status != 0 {
		t.Fatalf("first packet: %+v", out)
	}
	now = now.Add(4 * time.Second)
	if out := ch.Limit("d"); out.Status != http.StatusTooManyRequests || out.Reason != ReasonRateLimited || out.RetryAfter != 6*time.Second {
		t.Fatalf("within the interval: %+v", out)
	}
	if out := ch.Limit("e"); out.Status != 0 {
		t.Fatalf("another device: %+v", out)
	}
	now = now.Add(6 * time.Second)
	if out := ch.Limit("d"); out.Status != 0 {
		t.Fatalf("after the interval: %+v", out)
	}
	off, err := NewChecker(Config{MinInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if out := off.Limit("d"); out.Status != 0 {
			t.Fatalf("a negative interval limits: %+v", out)
		}
	}
}
