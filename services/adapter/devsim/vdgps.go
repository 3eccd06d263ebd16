package devsim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// VD GPS packet constants. The tracker's KEY block is not checked by the
// adapter; voltage and flags are plausible values of a healthy tracker.
const (
	vdgpsKey     = "devsim"
	vdgpsVoltage = "3900"
	vdgpsFlags   = "00"
	vdgpsRecord  = 13
)

// Coordinates are sent in units of 1e-7 degree. The sequence number is
// spread over both axes in steps of 1e-4 degree (1000 units), so every seq
// up to MaxSeq maps to its own position inside northern/eastern ranges (the
// format cannot carry negative coordinates).
const (
	latBase    = 49_0000000
	lngBase    = 17_0000000
	coordStep  = 1000
	latPerAxis = 100_000
)

// FixPosition returns the latitude and longitude of the fix of packet seq:
// latitude 49 + (seq mod 100000)·1e-4, longitude 17 + (seq div 100000)·1e-4.
func FixPosition(seq int) (lat, lng float64) {
	latU, lngU := fixUnits(seq)
	return float64(latU) / 1e7, float64(lngU) / 1e7
}

func fixUnits(seq int) (lat, lng uint32) {
	return uint32(latBase + (seq%latPerAxis)*coordStep), uint32(lngBase + (seq/latPerAxis)*coordStep)
}

// FixSeq recovers the sequence number from a decoded fix position; ok is
// false for a position FixPosition does not produce.
func FixSeq(lat, lng float64) (seq int, ok bool) {
	la := int64(math.Round(lat*1e7)) - latBase
	ln := int64(math.Round(lng*1e7)) - lngBase
	if la < 0 || ln < 0 || la%coordStep != 0 || ln%coordStep != 0 || la/coordStep >= latPerAxis {
		return 0, false
	}
	s := ln/coordStep*latPerAxis + la/coordStep
	if s > MaxSeq {
		return 0, false
	}
	return int(s), true
}

// EncodeVDGPS builds a VD GPS packet of tracker id (the adapter names the
// thing "VD"+id) with one fix: position FixPosition(seq), fix time at
// (whole seconds, UTC) and 4 + seq mod 9 satellites.
func EncodeVDGPS(id string, seq int, at time.Time) ([]byte, error) {
	if id == "" {
		return nil, errors.New("device id is empty")
	}
	if strings.Contains(id, "|") {
		return nil, fmt.Errorf("device id %q contains the block separator '|'", id)
	}
	if seq < 0 || seq > MaxSeq {
		return nil, fmt.Errorf("sequence number %d outside 0..%d", seq, MaxSeq)
	}
	ts, err := packTime(at)
	if err != nil {
		return nil, err
	}
	header := vdgpsKey + "|" + id + "|" + vdgpsVoltage + "|" + vdgpsFlags + "|"
	out := make([]byte, len(header), len(header)+vdgpsRecord)
	copy(out, header)
	lat, lng := fixUnits(seq)
	out = binary.LittleEndian.AppendUint32(out, ts)
	out = append(out, byte(4+seq%9))
	out = binary.LittleEndian.AppendUint32(out, lng)
	out = binary.LittleEndian.AppendUint32(out, lat)
	return out, nil
}

// packTime is the inverse of the tracker's timestamp packing
// (date*100000 + second of day, date = (year-2000)*372 + month*31 + day).
// The packing gives every month 31 days; the decoder's time.Date
// normalization maps the resulting values back exactly, including
// month ends and 31 December.
func packTime(at time.Time) (uint32, error) {
	t := at.UTC()
	date := (t.Year()-2000)*372 + int(t.Month())*31 + t.Day()
	v := int64(date)*100000 + int64(t.Hour()*3600+t.Minute()*60+t.Second())
	if t.Year() < 2000 || v > math.MaxUint32 {
		return 0, fmt.Errorf("fix time %s outside the tracker format's range (2000 to 2115)", t.Format(time.RFC3339))
	}
	return uint32(v), nil
}
