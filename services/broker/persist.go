package broker

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.etcd.io/bbolt"
)

// sessionStore persists retained messages and persistent sessions with
// mochi's bbolt hook, in DataDir/broker/broker.db. It writes only what a
// restart needs: every bbolt write is an fsync, and the stock hook would
// also write the acknowledgement state of every QoS 1 message from every
// client, clean sessions included, twice per message, plus $SYS counters
// every tick.
type sessionStore struct {
	*bolt.Hook
	// live reports whether a client still has an identity; a revoked
	// session's record must not be written back after it was deleted.
	live func(*mqtt.Client) bool
	// provides answers Provides: mochi asks every hook about every event
	// of every packet, and the stock hook searches a list each time.
	provides [256]bool
}

const dbFile = "broker.db"

func openSessionStore(server *mqtt.Server, dir string, live func(*mqtt.Client) bool) (*sessionStore, error) {
	s := &sessionStore{Hook: new(bolt.Hook), live: live}
	for k := range s.provides {
		// The $SYS snapshot is dropped: counters restart with the process.
		b := byte(k)
		s.provides[k] = b != mqtt.OnSysInfoTick && b != mqtt.StoredSysInfo && s.Hook.Provides(b)
	}
	err := server.AddHook(s, &bolt.Options{
		Path:    filepath.Join(dir, dbFile),
		Options: &bbolt.Options{Timeout: time.Second}, // another process holding the file is an error, not a hang
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", filepath.Join(dir, dbFile), err)
	}
	return s, nil
}

// ID names the hook in mochi's logs.
func (s *sessionStore) ID() string { return "piot-sessions" }

// Provides is the stock hook's answer, without the $SYS snapshot.
func (s *sessionStore) Provides(b byte) bool { return s.provides[b] }

// ephemeral reports whether a session ends with its connection, so that
// nothing of it needs to survive a restart.
func ephemeral(cl *mqtt.Client) bool {
	if cl.Properties.ProtocolVersion == 5 {
		return cl.Properties.Props.SessionExpiryInterval == 0
	}
	return cl.Properties.Clean
}

// OnSessionEstablished records persistent sessions only.
func (s *sessionStore) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	if !ephemeral(cl) {
		s.Hook.OnSessionEstablished(cl, pk)
	}
}

// OnWillSent updates the record of live persistent sessions only.
func (s *sessionStore) OnWillSent(cl *mqtt.Client, pk packets.Packet) {
	if !ephemeral(cl) && s.live(cl) {
		s.Hook.OnWillSent(cl, pk)
	}
}

// OnSubscribed records the granted subscriptions of persistent sessions.
// The stock hook also stores refused filters, which a restart would turn
// into live subscriptions (still harmless thanks to the delivery ACL, but
// a "#" would cost an ACL check on every message).
func (s *sessionStore) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	if ephemeral(cl) {
		return
	}
	granted := pk
	granted.Filters = nil
	var grantedCodes []byte
	for i, f := range pk.Filters {
		if i < len(codes) && codes[i] < packets.ErrUnspecifiedError.Code {
			granted.Filters = append(granted.Filters, f)
			grantedCodes = append(grantedCodes, codes[i])
		}
	}
	if len(granted.Filters) > 0 {
		s.Hook.OnSubscribed(cl, granted, grantedCodes)
	}
}

// OnQosPublish records queued outbound messages of persistent sessions.
// Inbound QoS 1 acknowledgements (PUBACK) are complete as soon as they are
// written, so there is nothing to resume.
func (s *sessionStore) OnQosPublish(cl *mqtt.Client, pk packets.Packet, sent int64, resends int) {
	if ephemeral(cl) || pk.FixedHeader.Type == packets.Puback {
		return
	}
	s.Hook.OnQosPublish(cl, pk, sent, resends)
}

// OnQosComplete forgets a completed message of a persistent session. The
// PUBACKs the broker itself builds for inbound QoS 1 messages (they carry a
// creation time; PUBACKs decoded from clients do not) were never written,
// and deleting them would cost an fsync per inbound message.
func (s *sessionStore) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	if ephemeral(cl) || pk.FixedHeader.Type == packets.Puback && pk.Created != 0 {
		return
	}
	s.Hook.OnQosComplete(cl, pk)
}

// StoredInflightMessages restores queued messages with their packet IDs.
// mochi's bbolt hook does not store the ID in the record (only in its
// key), so every restored message would get ID 0: all but one message per
// session would collapse into one, and ID 0 is invalid for QoS > 0.
func (s *sessionStore) StoredInflightMessages() ([]storage.Message, error) {
	msgs, err := s.Hook.StoredInflightMessages()
	if err != nil {
		return nil, fmt.Errorf("load queued messages: %w", err)
	}
	out := msgs[:0]
	for _, m := range msgs {
		if m.PacketID == 0 {
			i := strings.LastIndexByte(m.ID, ':')
			id, err := strconv.ParseUint(m.ID[i+1:], 10, 16)
			if i < 0 || err != nil || id == 0 {
				continue // unusable record
			}
			m.PacketID = uint16(id)
		}
		out = append(out, m)
	}
	return out, nil
}

// forget deletes a session's record; its subscriptions and queued
// messages are deleted by the unsubscribe and drop hooks.
func (s *sessionStore) forget(cl *mqtt.Client) {
	s.Hook.OnClientExpired(cl)
}

// forgetRetained deletes one retained message.
func (s *sessionStore) forgetRetained(topic string) {
	s.Hook.OnRetainedExpired(topic)
}
