package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/piot-appliance/piot/internal/fileutil"
)

// Marks let a producer that resends (the edge adapter relay) tell a
// resend from a new message exactly once, even across a crash: the mark
// "key reached seq" is a journal record appended in the same batch as the
// messages it covers (SubmitAll), so either both are durable or neither
// is. Applying a mark records it in memory; flush writes the marks to a
// file before the journal checkpoint moves past them, and replay after a
// crash re-applies the rest.
const markPrefix = "$mark/"

// MaxMarkKey bounds a mark's key.
const MaxMarkKey = 128

// Mark is the message that records key as having reached seq; journal it
// with SubmitAll together with what it covers.
func Mark(key string, seq uint64) Message {
	return Message{Topic: markPrefix + key, Payload: strconv.AppendUint(nil, seq, 10), At: time.Now()}
}

// IsMark reports whether a topic is a mark's; marks are never delivered.
func IsMark(topic string) bool { return strings.HasPrefix(topic, markPrefix) }

func validMarkKey(key string) bool {
	return key != "" && len(key) <= MaxMarkKey && !strings.ContainsAny(key, " \n\x00")
}

type marks struct {
	path string

	mu    sync.Mutex
	m     map[string]uint64
	dirty bool
}

func loadMarks(path string) (*marks, error) {
	mk := &marks{path: path, m: map[string]uint64{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return mk, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ingest: marks: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, text, ok := strings.Cut(sc.Text(), " ")
		seq, err := strconv.ParseUint(text, 10, 64)
		if !ok || err != nil || !validMarkKey(key) {
			return nil, fmt.Errorf("ingest: marks: malformed line %q in %s", sc.Text(), path)
		}
		mk.m[key] = max(mk.m[key], seq)
	}
	return mk, nil
}

// apply records a mark record's topic and payload.
func (mk *marks) apply(topic string, payload []byte) error {
	key := strings.TrimPrefix(topic, markPrefix)
	seq, err := strconv.ParseUint(string(payload), 10, 64)
	if err != nil || !validMarkKey(key) {
		return fmt.Errorf("ingest: malformed mark %q", topic)
	}
	mk.mu.Lock()
	if seq > mk.m[key] {
		mk.m[key] = seq
		mk.dirty = true
	}
	mk.mu.Unlock()
	return nil
}

func (mk *marks) get(key string) uint64 {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	return mk.m[key]
}

// save writes the marks if they changed since the last save.
func (mk *marks) save() error {
	mk.mu.Lock()
	if !mk.dirty {
		mk.mu.Unlock()
		return nil
	}
	var b bytes.Buffer
	for k, v := range mk.m {
		fmt.Fprintf(&b, "%s %d\n", k, v)
	}
	mk.dirty = false
	mk.mu.Unlock()
	if err := fileutil.WriteFile(mk.path, b.Bytes(), 0o600); err != nil {
		mk.mu.Lock()
		mk.dirty = true
		mk.mu.Unlock()
		return fmt.Errorf("ingest: marks: %w", err)
	}
	return nil
}

// RelayMarks are the marks as the relay keeps them (relay.Marks): one
// edge adapter's highest processed sequence number, journaled with the
// packet's messages or alone.
type RelayMarks struct{ ing *Ingest }

// RelayMarks returns the marks of this ingest for the relay.
func (i *Ingest) RelayMarks() RelayMarks { return RelayMarks{i} }

// Last is the highest sequence number journaled for key (0: none).
func (m RelayMarks) Last(key string) uint64 { return m.ing.LastMark(key) }

// Message is the mark to journal with a packet's messages.
func (m RelayMarks) Message(key string, seq uint64) Message { return Mark(key, seq) }

// Record journals the mark alone, durably, for a packet that stored
// nothing.
func (m RelayMarks) Record(key string, seq uint64) error {
	return m.ing.SubmitAll([]Message{Mark(key, seq)})
}
