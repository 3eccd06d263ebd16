package devsim

import (
	"bytes"
	"crypto/aes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/adapter/vdgps"
)

const testKey = "0123456789abcdef"

// wirePIOT is the packet as the adapter reads it (long names).
type wirePIOT struct {
	Device   string   `json:"device"`
	Time     *float64 `json:"time"`
	Readings []struct {
		Address string   `json:"address"`
		T       *float32 `json:"t"`
	} `json:"readings"`
}

func decodePIOT(t *testing.T, b []byte) wirePIOT {
	t.Helper()
	var w wirePIOT
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return w
}

// decryptECB is written independently of the encoder from the protocol
// description: every 16-byte block on its own, then PKCS#7.
func decryptECB(key string, ct []byte) ([]byte, error) {
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("ciphertext length %d", len(ct))
	}
	block, err := aes.NewCipher([]byte(key))
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(ct))
	for i := 0; i < len(ct); i += aes.BlockSize {
		block.Decrypt(out[i:], ct[i:i+aes.BlockSize])
	}
	n := int(out[len(out)-1])
	if n < 1 || n > aes.BlockSize || !bytes.Equal(out[len(out)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		return nil, fmt.Errorf("bad padding %x", out[len(out)-aes.BlockSize:])
	}
	return out[:len(out)-n], nil
}

func mustDecrypt(t *testing.T, key string, ct []byte) []byte {
	t.Helper()
	plain, err := decryptECB(key, ct)
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

func checkPIOT(t *testing.T, w wirePIOT, dev string, seq int, at time.Time) {
	t.Helper()
	if w.Device != dev {
		t.Errorf("device %q, want %q", w.Device, dev)
	}
	if w.Time == nil || int64(*w.Time) != at.Unix() {
		t.Errorf("time %v, want %d", w.Time, at.Unix())
	}
	if len(w.Readings) != 1 || w.Readings[0].Address != dev || w.Readings[0].T == nil || *w.Readings[0].T != float32(seq) {
		t.Fatalf("readings %+v, want one at %q with t=%d", w.Readings, dev, seq)
	}
	if SensorName(dev) != "T"+w.Readings[0].Address {
		t.Errorf("SensorName(%q) = %q", dev, SensorName(dev))
	}
}

func TestEncodePIOTPlain(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, seq := range []int{0, 1, 2, 999, 1 << 20, MaxSeq - 1, MaxSeq} {
		b, err := EncodePIOT("sim0001", seq, at, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkPIOT(t, decodePIOT(t, b), "sim0001", seq, at)
		// The value must travel as an exact integer, not 1e+06 or 16777216.5.
		if want := `"t":` + itoa(seq) + `}`; !strings.Contains(string(b), want) {
			t.Errorf("packet %s lacks %s", b, want)
		}
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestEncodePIOTEncrypted(t *testing.T) {
	at := time.Unix(1_700_000_123, 0)
	for _, dev := range []string{"a", "sim0001", strings.Repeat("x", 40)} {
		ct, err := EncodePIOT(dev, 42, at, []byte(testKey))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(ct, []byte("{")) {
			t.Fatal("ciphertext looks like plaintext")
		}
		checkPIOT(t, decodePIOT(t, mustDecrypt(t, testKey, ct)), dev, 42, at)
	}
}

func TestEncodePIOTFullPaddingBlock(t *testing.T) {
	// Find a packet whose JSON is a multiple of 16 bytes: PKCS#7 then adds a
	// whole block of 0x10, which the adapter must accept.
	at := time.Unix(1_700_000_000, 0)
	for seq := 1; seq <= 100_000; seq *= 10 {
		for n := 1; n <= 16; n++ {
			dev := strings.Repeat("d", n)
			plain, _ := EncodePIOT(dev, seq, at, nil)
			if len(plain)%aes.BlockSize != 0 {
				continue
			}
			ct, err := EncodePIOT(dev, seq, at, []byte(testKey))
			if err != nil {
				t.Fatal(err)
			}
			if len(ct) != len(plain)+aes.BlockSize {
				t.Fatalf("len %d, want %d", len(ct), len(plain)+aes.BlockSize)
			}
			checkPIOT(t, decodePIOT(t, mustDecrypt(t, testKey, ct)), dev, seq, at)
			return
		}
	}
	t.Fatal("no packet was block-aligned")
}

func TestEncodePIOTErrors(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	for name, f := range map[string]func() error{
		"empty device":   func() error { _, err := EncodePIOT("", 1, at, nil); return err },
		"negative seq":   func() error { _, err := EncodePIOT("d", -1, at, nil); return err },
		"seq too big":    func() error { _, err := EncodePIOT("d", MaxSeq+1, at, nil); return err },
		"before 1970":    func() error { _, err := EncodePIOT("d", 1, time.Unix(-1, 0), nil); return err },
		"after 1e11":     func() error { _, err := EncodePIOT("d", 1, time.Unix(1e11+1, 0), nil); return err },
		"short key":      func() error { _, err := EncodePIOT("d", 1, at, []byte("short")); return err },
		"AES-256 length": func() error { _, err := EncodePIOT("d", 1, at, bytes.Repeat([]byte("k"), 32)); return err },
	} {
		if f() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestEncodeVDGPSRoundTrip(t *testing.T) {
	times := []time.Time{
		time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2020, 2, 29, 13, 25, 36, 0, time.UTC),
		time.Date(2021, 1, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2021, 4, 30, 12, 0, 0, 0, time.UTC),
		time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2100, 2, 28, 6, 7, 8, 0, time.UTC),
		// Not UTC: the fix time is the same instant in UTC.
		time.Date(2026, 7, 1, 1, 30, 0, 0, time.FixedZone("CEST", 2*3600)),
	}
	seqs := []int{0, 1, 2, 99_999, 100_000, 123_456, MaxSeq}
	for i, at := range times {
		seq := seqs[i%len(seqs)]
		b, err := EncodeVDGPS("sim0001", seq, at)
		if err != nil {
			t.Fatal(err)
		}
		checkVDGPS(t, b, "sim0001", seq, at)
	}
	for _, seq := range seqs {
		b, err := EncodeVDGPS("x", seq, times[1])
		if err != nil {
			t.Fatal(err)
		}
		checkVDGPS(t, b, "x", seq, times[1])
	}
}

// TestEncodeVDGPSEveryDay walks every day of a century at a changing time
// of day: the packed format gives every month 31 days and relies on the
// decoder's normalization, so month ends are where an encoder goes wrong.
func TestEncodeVDGPSEveryDay(t *testing.T) {
	at := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; at.Before(end); i++ {
		at = at.Add(24*time.Hour + 7*time.Second)
		b, err := EncodeVDGPS("d", 1, at)
		if err != nil {
			t.Fatal(err)
		}
		p, err := vdgps.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if p.Fixes[0].TS != at.Unix() {
			t.Fatalf("%s decoded as %s", at, time.Unix(p.Fixes[0].TS, 0).UTC())
		}
	}
}

func checkVDGPS(t *testing.T, b []byte, id string, seq int, at time.Time) {
	t.Helper()
	p, err := vdgps.Parse(b)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if p.ID != id || len(p.Fixes) != 1 {
		t.Fatalf("packet %+v", p)
	}
	f := p.Fixes[0]
	if f.TS != at.Unix() {
		t.Errorf("fix time %s, want %s", time.Unix(f.TS, 0).UTC(), at.UTC())
	}
	if got, ok := FixSeq(f.Lat, f.Lng); !ok || got != seq {
		t.Errorf("FixSeq(%v, %v) = %d, %v; want %d", f.Lat, f.Lng, got, ok, seq)
	}
	lat, lng := FixPosition(seq)
	if f.Lat != lat || f.Lng != lng {
		t.Errorf("position %v,%v, want %v,%v", f.Lat, f.Lng, lat, lng)
	}
	if f.Lat < 0 || f.Lat > 90 || f.Lng < 0 || f.Lng > 180 {
		t.Errorf("position %v,%v out of range", f.Lat, f.Lng)
	}
	if f.Sat != 4+seq%9 {
		t.Errorf("sat %d", f.Sat)
	}
}

// TestPackTimeMatchesCapture checks the packing against a real tracker's
// first record (2020-02-29 13:25:36 UTC).
func TestPackTimeMatchesCapture(t *testing.T) {
	capture, err := os.ReadFile("../vdgps/testdata/vdgps-capture-69-fixes.bin")
	if err != nil {
		t.Fatal(err)
	}
	p, err := vdgps.Parse(capture)
	if err != nil {
		t.Fatal(err)
	}
	first := time.Unix(p.Fixes[0].TS, 0)
	got, err := packTime(first)
	if err != nil {
		t.Fatal(err)
	}
	header := len("DBUNH3g8u6os|BCKPX|3928|00|")
	want := uint32(capture[header]) | uint32(capture[header+1])<<8 | uint32(capture[header+2])<<16 | uint32(capture[header+3])<<24
	if got != want {
		t.Fatalf("packTime(%s) = %#x, capture has %#x", first.UTC(), got, want)
	}
}

func TestEncodeVDGPSErrors(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	for name, f := range map[string]func() error{
		"empty id":     func() error { _, err := EncodeVDGPS("", 1, at); return err },
		"separator":    func() error { _, err := EncodeVDGPS("a|b", 1, at); return err },
		"negative seq": func() error { _, err := EncodeVDGPS("d", -1, at); return err },
		"seq too big":  func() error { _, err := EncodeVDGPS("d", MaxSeq+1, at); return err },
		"before 2000": func() error {
			_, err := EncodeVDGPS("d", 1, time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC))
			return err
		},
		"after format": func() error { _, err := EncodeVDGPS("d", 1, time.Date(2116, 1, 1, 0, 0, 0, 0, time.UTC)); return err },
	} {
		if f() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestFixSeqRejectsForeignPositions(t *testing.T) {
	for _, pos := range [][2]float64{{0, 0}, {49.00005, 17}, {48.9, 17}, {49, 16.9}, {49.0001, 17.00005}} {
		if seq, ok := FixSeq(pos[0], pos[1]); ok {
			t.Errorf("FixSeq(%v) = %d, want not ok", pos, seq)
		}
	}
}

func BenchmarkEncodePIOT(b *testing.B) {
	at := time.Unix(1_700_000_000, 0)
	for i := 0; b.Loop(); i++ {
		if _, err := EncodePIOT("sim0001", i%MaxSeq, at, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePIOTEncrypted(b *testing.B) {
	at, key := time.Unix(1_700_000_000, 0), []byte(testKey)
	for i := 0; b.Loop(); i++ {
		if _, err := EncodePIOT("sim0001", i%MaxSeq, at, key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeVDGPS(b *testing.B) {
	at := time.Unix(1_700_000_000, 0)
	for i := 0; b.Loop(); i++ {
		if _, err := EncodeVDGPS("sim0001", i%MaxSeq, at); err != nil {
			b.Fatal(err)
		}
	}
}
