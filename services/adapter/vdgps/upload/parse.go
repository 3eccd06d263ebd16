package upload

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// RecordSize is the size of one binary fix record.
const RecordSize = 13

// Packet is one decoded upload of a VD GPS tracker.
type Packet struct {
	// ID is the device id as sent; the thing's name and piot_id are
	// "VD"+ID.
	ID string
	// Voltage is the VOLTAGE block as sent (millivolts on real devices).
	Voltage float64
	// Flags is the first byte of the FLAGS block ("alarm flags"; the
	// appliance only logs it).
	Flags byte
	// Fixes in packet order.
	Fixes []Fix
}

// Fix is one GPS fix.
//
// The device format stores both coordinates as unsigned 32-bit integers in
// units of 1e-7 degree, so a negative latitude (southern hemisphere) or
// longitude (western hemisphere) cannot be represented: Lat and Lng are
// always >= 0. They are passed on unchanged, as the reference does.
type Fix struct {
	TS  int64 // Unix seconds, UTC
	Lat float64
	Lng float64
	Sat int
}

// Parse decodes a packet: ASCII blocks `KEY|ID|VOLTAGE|FLAGS|<binary>`
// (split into at most 5 parts, so the binary block may contain `|`), then
// 13-byte little-endian records:
//
//	bytes 0-3   packed timestamp T: date = T/100000, secOfDay = T%100000,
//	            year = date/372+2000, month = (date%372)/31, day = date%31 (UTC)
//	byte  4     satellites
//	bytes 5-8   longitude * 1e7 (unsigned)
//	bytes 9-12  latitude * 1e7 (unsigned)
//
// A trailing partial record is ignored. KEY is not checked (the device
// format has no authentication). Parse never panics: fewer than 5 blocks, an
// empty ID or FLAGS block and a VOLTAGE that is not a finite number are
// errors.
func Parse(body []byte) (Packet, error) {
	blocks := bytes.SplitN(body, []byte("|"), 5)
	if len(blocks) < 5 {
		return Packet{}, fmt.Errorf("invalid number of blocks: %d, want 5", len(blocks))
	}
	var p Packet
	if len(blocks[1]) == 0 {
		return Packet{}, errors.New("device id cannot be empty")
	}
	p.ID = string(blocks[1])
	v, err := strconv.ParseFloat(string(blocks[2]), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return Packet{}, errors.New("invalid voltage")
	}
	p.Voltage = v
	if len(blocks[3]) == 0 {
		return Packet{}, errors.New("flags block cannot be empty")
	}
	p.Flags = blocks[3][0]
	data := blocks[4]
	n := len(data) / RecordSize
	p.Fixes = make([]Fix, 0, n)
	for i := 0; i < n; i++ {
		r := data[i*RecordSize : (i+1)*RecordSize]
		p.Fixes = append(p.Fixes, Fix{
			TS:  unpackTime(binary.LittleEndian.Uint32(r[0:4])),
			Sat: int(r[4]),
			Lng: float64(binary.LittleEndian.Uint32(r[5:9])) / 1e7,
			Lat: float64(binary.LittleEndian.Uint32(r[9:13])) / 1e7,
		})
	}
	return p, nil
}

// unpackTime decodes the device's packed timestamp as the reference does
// (out-of-range fields are normalized by time.Date, not rejected).
func unpackTime(t uint32) int64 {
	date := int(t / 100000)
	sec := int(t % 100000)
	year := date/372 + 2000
	month := time.Month((date % 372) / 31)
	day := date % 31
	return time.Date(year, month, day, sec/3600, (sec%3600)/60, sec%60, 0, time.UTC).Unix()
}
