// Package upload is what the VD GPS tracker protocol (`POST
// /adapter/vdgps`) needs without the appliance: decoding an upload
// (Parse) and naming, and checking the name of, the tracker it comes
// from. The appliance's handler (package vdgps) registers and publishes
// what passes; the edge adapter checks uploads with it before it spools
// them, without core or the store.
package upload

import (
	"net/http"

	"github.com/piot-appliance/piot/services/adapter/protocol"
	"github.com/piot-appliance/piot/services/names"
)

// NamePrefix is prepended to the device id to form the thing's name and
// piot_id.
const NamePrefix = "VD"

// ReasonBadPacket counts uploads that do not decode.
const ReasonBadPacket = "bad_packet"

// Device returns the thing name of an upload; the edge adapter checks
// uploads with it before it spools them.
func Device(body []byte) (string, protocol.Outcome) {
	p, err := Parse(body)
	if err != nil {
		return "", protocol.Outcome{Status: http.StatusBadRequest, Reason: ReasonBadPacket, Msg: "invalid packet: " + err.Error()}
	}
	name := NamePrefix + p.ID
	if err := names.Valid("thing", name); err != nil {
		return "", protocol.Outcome{Status: http.StatusBadRequest, Reason: protocol.ReasonInvalidName, Msg: "invalid device id: " + err.Error()}
	}
	return name, protocol.Outcome{}
}
