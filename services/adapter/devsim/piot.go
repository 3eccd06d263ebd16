package devsim

import (
	"bytes"
	"crypto/aes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// MaxSeq is the largest sequence number a packet can carry: the PIOT
// reading is a float32, which holds every integer only up to 2^24, and a
// test that checks exactly-once delivery needs the value exact.
const MaxSeq = 1 << 24

// maxPIOTTime mirrors the adapter's accepted range of the `time` field.
const maxPIOTTime = 1e11

type piotReading struct {
	Address string  `json:"address"`
	T       float32 `json:"t"`
}

type piotPacket struct {
	Device   string        `json:"device"`
	Time     int64         `json:"time"`
	Readings []piotReading `json:"readings"`
}

// SensorName is the thing the adapter registers for the temperature reading
// of device dev. The reading's address is the device name rather than a
// fixed "1": the adapter names sensors "T"+address and finds them by that
// name alone, so a shared address would make every simulated device claim
// (and re-parent) the same sensor and mix their histories.
func SensorName(dev string) string { return "T" + dev }

// EncodePIOT builds the PIOT JSON packet (long field names) of device dev
// carrying one temperature reading whose value is seq, and the device clock
// at (Unix seconds) in `time`. With a non-nil key (16 bytes, AES-128) the
// JSON is PKCS#7-padded and encrypted with AES-ECB, as legacy devices do.
func EncodePIOT(dev string, seq int, at time.Time, key []byte) ([]byte, error) {
	if dev == "" {
		return nil, errors.New("device name is empty")
	}
	if seq < 0 || seq > MaxSeq {
		return nil, fmt.Errorf("sequence number %d outside 0..%d (float32 would round it)", seq, MaxSeq)
	}
	unix := at.Unix()
	if unix < 0 || unix > maxPIOTTime {
		return nil, fmt.Errorf("device time %s outside the protocol's range", at.UTC().Format(time.RFC3339))
	}
	plain, err := json.Marshal(piotPacket{
		Device:   dev,
		Time:     unix,
		Readings: []piotReading{{Address: dev, T: float32(seq)}},
	})
	if err != nil {
		return nil, fmt.Errorf("encode packet: %w", err)
	}
	if key == nil {
		return plain, nil
	}
	return encryptECB(key, plain)
}

// encryptECB pads with PKCS#7 and encrypts every block on its own (ECB, no
// IV). ECB is weak, but it is what the devices speak.
func encryptECB(key, plain []byte) ([]byte, error) {
	if len(key) != 16 {
		return nil, fmt.Errorf("AES key must be 16 bytes (AES-128), got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	n := aes.BlockSize - len(plain)%aes.BlockSize
	buf := make([]byte, 0, len(plain)+n)
	buf = append(buf, plain...)
	buf = append(buf, bytes.Repeat([]byte{byte(n)}, n)...)
	for i := 0; i < len(buf); i += aes.BlockSize {
		block.Encrypt(buf[i:i+aes.BlockSize], buf[i:i+aes.BlockSize])
	}
	return buf, nil
}
