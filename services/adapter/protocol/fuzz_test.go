package protocol

import (
	"bytes"
	"testing"
)

// FuzzDecode feeds arbitrary bodies to the packet decoder (plain and
// encrypted paths): it must never panic, and an encrypted valid packet must
// decode to the same packet as its plaintext.
func FuzzDecode(f *testing.F) {
	key := []byte(testKey)
	for _, s := range []string{
		`{"device":"Device123"}`,
		`{"d":"d1","r":[{"a":"x","t":1.5,"h":2,"p":3}],"wifi-strength":57,"time":1700000000}`,
		`{"device":"d","readings":[{"address":"a","t":-13.7}]} trailing`,
		``, `[]`, `{`, "\x10\x10",
	} {
		f.Add([]byte(s))
		if ct, err := EncryptECB(key, []byte(s)); err == nil {
			f.Add(ct)
		}
	}
	a := &Checker{key: key}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, out := a.Decode(body, "")
		status := out.Status
		if (p == nil) == (status == 0) {
			t.Fatalf("packet %v with status %d", p, status)
		}
		if pt, err := parsePacket(body); err == nil {
			ct, _ := EncryptECB(key, body)
			pe, o := a.Decode(ct, "")
			st := o.Status
			if st != 0 || pe.Device != pt.Device || len(pe.Readings) != len(pt.Readings) {
				t.Fatalf("encrypted decode differs: %d", st)
			}
		}
		if len(body) > 0 && len(body)%16 == 0 {
			if plain, err := decryptECB(key, body); err == nil {
				ct, _ := EncryptECB(key, plain)
				if !bytes.Equal(ct, body) {
					t.Fatal("round trip")
				}
			}
		}
	})
}
