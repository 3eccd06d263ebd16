package upload

import (
	"net/http"
	"testing"

	"github.com/piot-appliance/piot/services/adapter/protocol"
)

func TestDevice(t *testing.T) {
	if name, out := Device(readFixture(t)); name != "VDBCKPX" || out.Status != 0 {
		t.Fatalf("capture: %q %+v", name, out)
	}
	for _, c := range []struct {
		body, reason, msg string
	}{
		{"K|ID|3928|00", ReasonBadPacket, "invalid packet: invalid number of blocks: 4, want 5"},
		{"K||3928|00|", ReasonBadPacket, "invalid packet: device id cannot be empty"},
		{"K|a/b|1|0|", protocol.ReasonInvalidName, "invalid device id: thing name must not contain '/', '+', '#' or control characters"},
		{"K|a\u202eb|1|0|", protocol.ReasonInvalidName, "invalid device id: thing name must not contain invisible or direction-changing characters (U+202E)"},
	} {
		name, out := Device([]byte(c.body))
		if name != "" || out != (protocol.Outcome{Status: http.StatusBadRequest, Reason: c.reason, Msg: c.msg}) {
			t.Errorf("%q: %q %+v", c.body, name, out)
		}
	}
}
