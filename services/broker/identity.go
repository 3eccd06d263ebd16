package broker

import (
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/piot-appliance/piot/services/core"
)

// MonitorUsername is the read-only identity for $SYS/#, enabled by
// Config.MonitorPassword. While enabled the name is reserved: an org whose
// MQTT username is "monitor" cannot log in.
const MonitorUsername = "monitor"

type identityKind int

const (
	kindOrg identityKind = iota + 1
	kindMonitor
)

// identity is who a session authenticated as. For an org it keeps the
// credential version and org name seen at login: the ACL compares them with
// core's current state on every check, so a session never outlives the
// credentials or the org name it was granted under.
type identity struct {
	kind     identityKind
	username string
	org      core.MQTTIdentity
	client   *mqtt.Client
	// since is when client got the identity: its connection, for a
	// client that logged in.
	since time.Time
}

// identities maps session (client) IDs to the identity of the client
// object currently holding that session. The pointer is compared on every
// lookup because mochi keeps replaced client objects alive for a while
// (session takeover, in-flight deliveries) and they must not inherit the
// rights of their successor.
type identities struct {
	mu   sync.RWMutex
	byID map[string]*identity
}

func newIdentities() *identities {
	return &identities{byID: map[string]*identity{}}
}

// set records id for cl and returns the identity previously recorded for
// that session, if any.
func (s *identities) set(cl *mqtt.Client, id *identity) (prev *identity) {
	id.client = cl
	id.since = time.Now()
	s.mu.Lock()
	prev = s.byID[cl.ID]
	s.byID[cl.ID] = id
	s.mu.Unlock()
	return prev
}

// get returns the identity of cl, if cl is the current holder of its session.
func (s *identities) get(cl *mqtt.Client) (*identity, bool) {
	s.mu.RLock()
	id, ok := s.byID[cl.ID]
	s.mu.RUnlock()
	if !ok || id.client != cl {
		return nil, false
	}
	return id, true
}

// peek returns whatever identity is recorded for a session ID.
func (s *identities) peek(clientID string) (*identity, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.byID[clientID]
	return id, ok
}

// drop forgets cl's identity if cl still holds its session.
func (s *identities) drop(cl *mqtt.Client) {
	s.mu.Lock()
	if id, ok := s.byID[cl.ID]; ok && id.client == cl {
		delete(s.byID, cl.ID)
	}
	s.mu.Unlock()
}

// all returns a snapshot of the recorded identities.
func (s *identities) all() []*identity {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*identity, 0, len(s.byID))
	for _, id := range s.byID {
		out = append(out, id)
	}
	return out
}

// len reports the number of recorded sessions.
func (s *identities) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byID)
}
