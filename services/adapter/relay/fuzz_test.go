package relay

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/piot-appliance/piot/services/adapter/relay/wire"
)

// Whatever an edge adapter publishes, the hook neither panics nor leaves
// a packet both unacknowledged and unexplained: it is processed, counted
// as refused or malformed, or (for transient trouble only) not
// acknowledged.
func FuzzEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"edge":"e1","seq":1,"rx":1,"body":"eyJkZXZpY2UiOiJkIn0="}`,
		`{"edge":"e1","seq":2,"body":"AAAAAAAAAAAAAAAAAAAAAA=="}`,
		`{"edge":"","seq":1}`, `{"edge":"x y","seq":1,"body":"eA=="}`,
		`{"edge":"e","seq":18446744073709551615,"rx":-5,"body":"e30="}`,
		`[]`, `null`, `{`, "",
	} {
		f.Add([]byte(s))
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		_, err := e.h.OnPublish(nil, packets.Packet{TopicName: wire.Topic("acme", ProtoPIOT), Payload: payload,
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}})
		if !errors.Is(err, packets.CodeSuccessIgnore) {
			t.Fatalf("payload %q: %v", payload, err)
		}
		var env Envelope
		if json.Unmarshal(payload, &env) == nil && env.Seq > 0 && env.Edge != "" && len(env.Edge) <= MaxEdgeID &&
			!strings.ContainsAny(env.Edge, " \n") && len(env.Body) > 0 {
			// A resend of what was just handled is a duplicate.
			before := e.h.Stats()[ResultDuplicate]
			if _, err := e.h.OnPublish(nil, packets.Packet{TopicName: wire.Topic("acme", ProtoPIOT), Payload: payload}); !errors.Is(err, packets.CodeSuccessIgnore) {
				t.Fatalf("resend: %v", err)
			}
			if st := e.h.Stats(); st[ResultDuplicate] != before+1 {
				t.Fatalf("resend of seq %d not dropped: %v", env.Seq, st)
			}
		}
	})
}
