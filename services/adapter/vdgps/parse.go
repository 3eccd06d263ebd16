package vdgps

import "github.com/piot-appliance/piot/services/adapter/vdgps/upload"

// Parse decodes an upload; the format is package upload's, which the
// edge adapter shares without core.
func Parse(body []byte) (upload.Packet, error) { return upload.Parse(body) }
