package web

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// maxStreamsPerUser bounds the event streams one user holds open (a tab
// each); more get 429, so a script cannot pin goroutines without end.
const maxStreamsPerUser = 8

// streams counts open event streams per user.
type streams struct {
	mu sync.Mutex
	n  map[core.ID]int
}

func (st *streams) acquire(user core.ID) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.n == nil {
		st.n = map[core.ID]int{}
	}
	if st.n[user] >= maxStreamsPerUser {
		return false
	}
	st.n[user]++
	return true
}

func (st *streams) release(user core.ID) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.n[user]--; st.n[user] <= 0 {
		delete(st.n, user)
	}
}

// events is the live feed of the pages (Server-Sent Events): a "change"
// event whenever something the user may see changed, so the script
// reloads the page's main part. It carries no data: what to show is read
// again through core, with the same authorization as any page. A
// "thing" event carries the new state of a thing the user may read
// (thinglive.go), which the script writes into the elements marked
// data-thing/data-field, without a reload. The
// session is checked again at every keep-alive, so signing out or losing
// an account ends the stream.
func (s *Server) events(w http.ResponseWriter, r *http.Request, sess *session) {
	if !s.streams.acquire(sess.actor.UserID) {
		s.refuse(w, r, sess, http.StatusTooManyRequests, "Too many live pages open.")
		return
	}
	defer s.streams.release(sess.actor.UserID)
	rc := http.NewResponseController(w)
	// The server's timeouts are for ordinary answers; a stream lives
	// until the page closes.
	_ = rc.SetWriteDeadline(time.Time{})
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 5000\n\n"); err != nil {
		return
	}
	_ = rc.Flush()

	var actor atomic.Pointer[core.Actor]
	actor.Store(&sess.actor)
	changed := make(chan struct{}, 1)
	cancel := s.deps.Core.Subscribe(func(e core.Event) {
		if s.visible(*actor.Load(), e) {
			select {
			case changed <- struct{}{}:
			default: // one pending reload covers any number of changes
			}
		}
	})
	defer cancel()
	things := s.watchThings()
	defer things.stop()
	tick := time.NewTicker(s.cfg.KeepAlive)
	defer tick.Stop()
	for {
		var msg string
		select {
		case <-r.Context().Done():
			return
		case <-changed:
			msg = "event: change\ndata: {}\n\n"
		case <-things.ready:
			if msg = s.thingEvents(*actor.Load(), things); msg == "" {
				continue
			}
		case <-tick.C:
			fresh, err := s.sessionOf(r)
			if err != nil {
				_, _ = fmt.Fprint(w, "event: signedout\ndata: {}\n\n")
				_ = rc.Flush()
				return
			}
			actor.Store(&fresh.actor)
			msg = ": keep-alive\n\n"
		}
		if _, err := fmt.Fprint(w, msg); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// visible reports whether a change concerns something core lets the actor
// read now. What was deleted cannot be asked about any more, and a
// membership event names the membership, which core does not show; a
// bare reload hint for those tells nothing but that something changed.
func (s *Server) visible(a core.Actor, e core.Event) bool {
	c := s.deps.Core
	switch e.Kind {
	case core.OrgChanged:
		_, err := c.Org(a, e.ID)
		return err == nil
	case core.ThingChanged:
		_, err := c.Thing(a, e.ID)
		return err == nil
	case core.UserChanged:
		_, err := c.User(a, e.ID)
		return err == nil
	}
	return true
}
