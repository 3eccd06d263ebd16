package upload

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// fixture is a real tracker's upload; package vdgps's handler tests post
// it too.
const fixture = "../testdata/vdgps-capture-69-fixes.bin"

func readFixture(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(fixture)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestParseFixture(t *testing.T) {
	p, err := Parse(readFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "BCKPX" || p.Voltage != 3928 || p.Flags != '0' {
		t.Fatalf("header: %+v", p)
	}
	if len(p.Fixes) != 69 {
		t.Fatalf("fixes: %d, want 69", len(p.Fixes))
	}
	f := p.Fixes[0]
	want := time.Date(2020, 2, 29, 13, 25, 36, 0, time.UTC).Unix()
	if f.TS != want || f.Sat != 9 || f.Lng != 17.4043881 || f.Lat != 49.3065602 {
		t.Fatalf("first fix: %+v (ts %s)", f, time.Unix(f.TS, 0).UTC())
	}
	// The capture is a real track (in Czechia, early 2020); fixes are not
	// sorted by time, and the order must be kept as sent.
	lo := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for i, f := range p.Fixes {
		if f.TS < lo || f.TS >= hi || f.Lat < 48.5 || f.Lat > 51.1 || f.Lng < 12 || f.Lng > 19 || f.Sat > 32 {
			t.Errorf("fix %d implausible: %+v", i, f)
		}
	}
}

func TestParseTrailingPartialRecord(t *testing.T) {
	b := readFixture(t)
	hdr := bytes.Index(b, []byte("|00|")) + 4
	for extra := 0; extra < RecordSize; extra++ {
		body := append([]byte(string(b[:hdr])), b[hdr:hdr+2*RecordSize+extra]...)
		p, err := Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Fixes) != 2 {
			t.Fatalf("extra %d: %d fixes, want 2", extra, len(p.Fixes))
		}
	}
	// A header alone is a valid packet without fixes.
	p, err := Parse([]byte("K|ID|3700|00|"))
	if err != nil || len(p.Fixes) != 0 {
		t.Fatalf("empty data: %+v %v", p, err)
	}
}

func TestParseBinaryMayContainSeparator(t *testing.T) {
	rec := []byte{0xb0, 0x21, 0xe4, 0x2c, '|', 0xe9, 0xb2, 0x5f, 0x0a, 0x82, 0x95, 0x63, 0x1d}
	p, err := Parse(append([]byte("K|X|1|0|"), rec...))
	if err != nil || len(p.Fixes) != 1 || p.Fixes[0].Sat != '|' {
		t.Fatalf("%+v %v", p, err)
	}
}

func TestParseErrors(t *testing.T) {
	for name, body := range map[string]string{
		"empty":         "",
		"one block":     "DBUNH3g8u6os",
		"three blocks":  "K|BCKPX|3928",
		"four blocks":   "K|BCKPX|3928|00",
		"empty flags":   "K|BCKPX|3928||",
		"empty id":      "K||3928|00|",
		"bad voltage":   "K|BCKPX|abc|00|",
		"empty voltage": "K|BCKPX||00|",
		"nan voltage":   "K|BCKPX|NaN|00|",
		"inf voltage":   "K|BCKPX|+Inf|00|",
		"separators":    "||||",
	} {
		if p, err := Parse([]byte(body)); err == nil {
			t.Errorf("%s: no error, got %+v", name, p)
		}
	}
}

func FuzzParse(f *testing.F) {
	b := readFixture(f)
	f.Add(b)
	for _, s := range []string{"", "|", "||||", "K|ID|3928|00", "K|ID|3928||", "K||1|0|", "K|ID|1|0|\x00\x01", "K|ID|1e400|0|"} {
		f.Add([]byte(s))
	}
	for n := 0; n < len(b); n += 7 {
		f.Add(b[:n])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := Parse(body)
		if err != nil {
			return
		}
		if p.ID == "" {
			t.Fatal("empty id accepted")
		}
		if idx := bytes.IndexByte(body, '|'); idx < 0 {
			t.Fatal("packet without separator accepted")
		}
		for _, fx := range p.Fixes {
			if fx.Lat < 0 || fx.Lng < 0 || fx.Sat < 0 || fx.Sat > 255 {
				t.Fatalf("impossible fix %+v", fx)
			}
		}
	})
}
