package wire

import (
	"encoding/json"
	"testing"
)

// Edge adapters in the field and the appliance are updated apart: the
// topics and the envelope's JSON must not drift.
func TestWireFormat(t *testing.T) {
	if got := Topic("acme", ProtoPIOT); got != "org/acme/$adapter/piot" {
		t.Errorf("Topic: %s", got)
	}
	if got := DeviceTopic("acme", "dev1", ProtoVDGPS); got != "org/acme/dev1/$adapter/vdgps" {
		t.Errorf("DeviceTopic: %s", got)
	}
	b, err := json.Marshal(Envelope{Edge: "e1", Seq: 7, RX: 1700000000000, Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"edge":"e1","seq":7,"rx":1700000000000,"body":"eA=="}` {
		t.Errorf("envelope: %s", b)
	}
}
