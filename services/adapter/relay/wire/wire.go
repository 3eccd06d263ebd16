// Package wire is how an edge adapter hands device packets to the
// appliance: each packet in an Envelope, published at QoS 1 to a reserved
// topic under its organization (Topic, DeviceTopic). The edge adapter
// writes it without core or the broker; package relay, in the appliance,
// reads it.
package wire

// Level is the topic level that marks relayed packets; thing names cannot
// start with "$", so it never collides with a thing's topic.
const Level = "$adapter"

// Protocols, the last topic level.
const (
	ProtoPIOT  = "piot"
	ProtoVDGPS = "vdgps"
)

// Topic is where an edge adapter logged in with org's credentials
// publishes packets of proto.
func Topic(org, proto string) string { return "org/" + org + "/" + Level + "/" + proto }

// DeviceTopic is where an edge adapter logged in with the own credentials
// of thing (which reach only org/<org>/<thing>/…) publishes packets of
// proto; only that device's packets are processed from it.
func DeviceTopic(org, thing, proto string) string {
	return "org/" + org + "/" + thing + "/" + Level + "/" + proto
}

// Envelope is one relayed device packet.
type Envelope struct {
	// Edge identifies the edge adapter (generated at its first start).
	Edge string `json:"edge"`
	// Seq grows with every packet the edge adapter accepted.
	Seq uint64 `json:"seq"`
	// RX is when the edge adapter received the packet, Unix milliseconds.
	RX int64 `json:"rx"`
	// Body is the packet as the device sent it (base64 in JSON).
	Body []byte `json:"body"`
}

// MaxEdgeID bounds Envelope.Edge.
const MaxEdgeID = 64
