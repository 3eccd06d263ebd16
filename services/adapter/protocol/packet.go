package protocol

import (
	"bytes"
	"crypto/aes"
	"encoding/json"
	"errors"
)

// Packet is a decoded device packet; short names are folded into the long
// ones with the reference's precedence (a non-empty short value wins).
type Packet struct {
	Device       string
	IP           string
	WifiSSID     string
	WifiStrength *float32
	// Time is the device's unix time of the packet, 0 if absent; the
	// readings are stored as measured then (see Adapter.measuredAt in
	// package adapter).
	Time     int64
	Readings []Reading
}

// Reading is what one sensor address of a packet measured.
type Reading struct {
	Address string
	T, H, P *float32
}

// Measurement is one value of a reading; its sensor is the thing named
// Prefix+Address.
type Measurement struct {
	Prefix, Class, Unit string
	Value               float32
}

// Measurements lists a reading's values in the reference's order t, h, p.
func (r Reading) Measurements() []Measurement {
	var out []Measurement
	if r.T != nil {
		out = append(out, Measurement{"T", "temperature", UnitTemperature, *r.T})
	}
	if r.H != nil {
		out = append(out, Measurement{"H", "humidity", UnitHumidity, *r.H})
	}
	if r.P != nil {
		out = append(out, Measurement{"P", "pressure", UnitPressure, *r.P})
	}
	return out
}

type wireReading struct {
	Address string   `json:"address"`
	A       string   `json:"a"`
	T       *float32 `json:"t"`
	H       *float32 `json:"h"`
	P       *float32 `json:"p"`
}

type wirePacket struct {
	Device       string        `json:"device"`
	D            string        `json:"d"`
	IP           string        `json:"ip"`
	WifiSSID     string        `json:"wifi-ssid"`
	WifiStrength *float32      `json:"wifi-strength"`
	Time         *float64      `json:"time"`
	Readings     []wireReading `json:"readings"`
	R            []wireReading `json:"r"`
}

var errNotObject = errors.New("packet is not a JSON object")

// parsePacket decodes the first JSON value of b (trailing bytes are
// ignored, as in the reference).
func parsePacket(b []byte) (*Packet, error) {
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errNotObject
	}
	var w wirePacket
	if err := json.NewDecoder(bytes.NewReader(trimmed)).Decode(&w); err != nil {
		return nil, err
	}
	p := &Packet{Device: w.Device, IP: w.IP, WifiSSID: w.WifiSSID, WifiStrength: w.WifiStrength}
	if w.D != "" {
		p.Device = w.D
	}
	if w.Time != nil {
		if *w.Time < 0 || *w.Time > 1e11 {
			return nil, errors.New("time out of range")
		}
		p.Time = int64(*w.Time)
	}
	rs := w.Readings
	if len(w.R) > 0 {
		rs = w.R
	}
	for _, r := range rs {
		rd := Reading{Address: r.Address, T: r.T, H: r.H, P: r.P}
		if r.A != "" {
			rd.Address = r.A
		}
		p.Readings = append(p.Readings, rd)
	}
	return p, nil
}

var errPadding = errors.New("wrong PKCS#7 padding")

// decryptECB decrypts AES-128-ECB (each block on its own, no IV) and strips
// PKCS#7 padding. len(ct) must be a positive multiple of the block size.
func decryptECB(key, ct []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(ct))
	for i := 0; i < len(ct); i += aes.BlockSize {
		block.Decrypt(out[i:i+aes.BlockSize], ct[i:i+aes.BlockSize])
	}
	n := int(out[len(out)-1])
	if n < 1 || n > aes.BlockSize {
		return nil, errPadding
	}
	for _, c := range out[len(out)-n:] {
		if int(c) != n {
			return nil, errPadding
		}
	}
	return out[:len(out)-n], nil
}

// EncryptECB pads with PKCS#7 and encrypts with AES-128-ECB; devices and
// tests use it.
func EncryptECB(key, plain []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	n := aes.BlockSize - len(plain)%aes.BlockSize
	buf := append(append([]byte(nil), plain...), bytes.Repeat([]byte{byte(n)}, n)...)
	for i := 0; i < len(buf); i += aes.BlockSize {
		block.Encrypt(buf[i:i+aes.BlockSize], buf[i:i+aes.BlockSize])
	}
	return buf, nil
}
