package ingest

import (
	"encoding/binary"
	"errors"
	"time"
)

// A journal record is one message:
//
//	version (1) | unix nanoseconds int64 LE | uvarint topic length | topic | payload
const recordVersion = 1

var errBadRecord = errors.New("ingest: malformed journal record")

func encodeRecord(topic string, payload []byte, at time.Time) []byte {
	b := make([]byte, 0, 1+8+binary.MaxVarintLen64+len(topic)+len(payload))
	b = append(b, recordVersion)
	b = binary.LittleEndian.AppendUint64(b, uint64(at.UnixNano()))
	b = binary.AppendUvarint(b, uint64(len(topic)))
	b = append(b, topic...)
	return append(b, payload...)
}

func decodeRecord(b []byte) (topic string, payload []byte, at time.Time, err error) {
	if len(b) < 9 || b[0] != recordVersion {
		return "", nil, time.Time{}, errBadRecord
	}
	at = time.Unix(0, int64(binary.LittleEndian.Uint64(b[1:9])))
	n, k := binary.Uvarint(b[9:])
	if k <= 0 || n > uint64(len(b)-9-k) {
		return "", nil, time.Time{}, errBadRecord
	}
	start := 9 + k
	topic = string(b[start : start+int(n)])
	return topic, b[start+int(n):], at, nil
}
