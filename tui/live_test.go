package tui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// Publish refuses what the broker's ACL would refuse a member of acme,
// as the real feed has core do.
func (f *fakeFeed) Publish(_ context.Context, a core.Actor, m LiveMessage) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !a.Admin && !strings.HasPrefix(m.Topic, "org/acme/") {
		return &core.Error{Code: core.CodeForbidden, Msg: "you may only publish topics under org/<your organization>/"}
	}
	f.published = append(f.published, m)
	return nil
}

func (f *fakeFeed) sent() []LiveMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]LiveMessage(nil), f.published...)
}

// liveHarness opens the Live screen of a member of acme at 80×24.
func liveHarness(t *testing.T) (*harness, *fakeFeed) {
	t.Helper()
	w := newWorld(t)
	feed := &fakeFeed{}
	h := newHarness(t, Deps{Core: w.core, Live: feed}, w.member, 80, 24)
	h.key("5")
	h.waitFor("org/acme/#", "following", "waiting for messages")
	return h, feed
}

func sendNumbered(feed *fakeFeed, from, to int) {
	for i := from; i <= to; i++ {
		feed.send(LiveMessage{Time: testNow.Add(time.Duration(i) * time.Second), Topic: fmt.Sprintf("org/acme/m/%03d", i), Payload: []byte(fmt.Sprint(i))})
	}
}

func TestLiveScrollBackAndFollow(t *testing.T) {
	h, feed := liveHarness(t)
	sendNumbered(feed, 1, 30)
	s := h.waitFor("org/acme/m/030", "30 messages kept")
	checkFits(t, s, 80, 24)
	if !strings.Contains(selectedRow(s), "m/030") {
		t.Fatalf("the newest message is not selected while following:\n%s", s)
	}
	h.key("up", "up", "up")
	s = h.waitFor("scrolled back, 3 newer (G follows)")
	if !strings.Contains(selectedRow(s), "m/027") {
		t.Fatalf("up did not select m/027:\n%s", s)
	}
	// Scrolled back, the selection stays on its message as more arrive.
	sendNumbered(feed, 31, 35)
	s = h.waitFor("35 messages kept", "scrolled back, 8 newer")
	if !strings.Contains(selectedRow(s), "m/027") {
		t.Fatalf("the selection moved when messages arrived:\n%s", s)
	}
	if strings.Contains(s, "m/035") {
		t.Fatalf("the rows scrolled away from the selection:\n%s", s)
	}
	h.key("g")
	s = h.waitFor("m/001")
	if !strings.Contains(selectedRow(s), "m/001") {
		t.Fatalf("home did not select the oldest:\n%s", s)
	}
	h.key("ctrl+f")
	s = h.waitFor("scrolled back")
	var n int
	if _, err := fmt.Sscanf(selectedRow(s)[strings.Index(selectedRow(s), "m/")+2:], "%d", &n); err != nil || n < 15 {
		t.Fatalf("page down did not move a page (%d, %v):\n%s", n, err, s)
	}
	h.key("G")
	if s = h.waitFor("following"); !strings.Contains(selectedRow(s), "m/035") {
		t.Fatalf("end did not select the newest:\n%s", s)
	}
	sendNumbered(feed, 36, 36)
	s = h.waitFor("m/036")
	if !strings.Contains(selectedRow(s), "m/036") {
		t.Fatalf("end did not follow the newest again:\n%s", s)
	}
	checkFits(t, s, 80, 24)
}

// Pause keeps receiving: the rows stay, "N new" counts what arrived, and
// resuming shows it. The buffer is bounded and says what it dropped.
func TestLivePauseKeepsMessages(t *testing.T) {
	h, feed := liveHarness(t)
	sendNumbered(feed, 1, 3)
	h.waitFor("org/acme/m/003")
	h.key("space")
	h.waitFor("PAUSED, 0 new")
	sendNumbered(feed, 4, 8)
	s := h.waitFor("PAUSED, 5 new", "8 messages kept")
	if strings.Contains(s, "m/004") {
		t.Fatalf("a paused screen shows new messages:\n%s", s)
	}
	h.key("space")
	s = h.waitFor("following", "org/acme/m/008")
	if !strings.Contains(selectedRow(s), "m/008") {
		t.Fatalf("resuming did not select the newest:\n%s", s)
	}

	h.key("p")
	for i := 9; i <= liveKeep+60; i += 50 {
		sendNumbered(feed, i, min(i+49, liveKeep+60))
		h.settle()
	}
	s = h.waitFor(fmt.Sprintf("%d messages kept", liveKeep), "60 older dropped", fmt.Sprintf("PAUSED, %d new", liveKeep+52), "nothing from before the pause is kept")
	checkFits(t, s, 80, 24)
	h.key("p")
	h.waitFor(fmt.Sprintf("org/acme/m/%03d", liveKeep+60))
	h.key("c")
	s = h.waitFor("0 messages kept", "waiting for messages")
	if strings.Contains(s, "dropped") {
		t.Fatalf("clear kept the dropped count:\n%s", s)
	}
}

func TestLiveMessageDetail(t *testing.T) {
	h, feed := liveHarness(t)
	feed.send(LiveMessage{Time: testNow, Topic: "org/acme/boiler/state", Payload: []byte(`{"t":21.5,"tags":["a","b"]}`), QoS: 1, Retained: true})
	h.waitFor("org/acme/boiler/state")
	h.key("enter")
	s := h.waitFor("Message 1 of 1", "topic     org/acme/boiler/state", "2026-05-01 12:00:00.000 UTC",
		"QoS       1    retained yes    size 27 B", "JSON, pretty-printed", `  "t": 21.5,`, `    "a",`)
	checkFits(t, s, 80, 24)
	h.key("x")
	s = h.waitFor("hex dump (x shows text)", `00000000  7b 22 74 22 3a 32 31 2e 35 2c 22 74 61 67 73 22  |{"t":21.5,"tags"|`)
	checkFits(t, s, 80, 24)
	h.key("esc")
	h.waitFor("1 messages kept")

	// Binary payloads are dumped; a long one wraps and scrolls.
	feed.send(LiveMessage{Time: testNow, Topic: "org/acme/blob", Payload: []byte{0xff, 0x00, 0x41}})
	long := strings.Repeat("0123456789", 200) + "END"
	feed.send(LiveMessage{Time: testNow, Topic: "org/acme/long", Payload: []byte(long)})
	h.waitFor("org/acme/long")
	h.key("up", "enter")
	h.waitFor("Message 2 of 3", "binary, hex dump", "00000000  ff 00 41", "|..A|")
	h.key("right")
	s = h.waitFor("Message 3 of 3", "text (x shows hex)", "lines 1–")
	checkFits(t, s, 80, 24)
	if strings.Contains(s, "END") {
		t.Fatalf("the end of a long payload shows before scrolling:\n%s", s)
	}
	h.key("G")
	s = h.waitFor("END")
	checkFits(t, s, 80, 24)
	h.key("esc")
	s = h.waitFor("3 messages kept")
	if !strings.Contains(selectedRow(s), "org/acme/long") {
		t.Fatalf("the selection does not follow the message read last:\n%s", s)
	}
}

func TestLivePublish(t *testing.T) {
	h, feed := liveHarness(t)
	h.key("s")
	s := h.waitFor("Publish a message", "Topic", "Payload", "QoS", "Retained", "org/acme/")
	checkFits(t, s, 80, 24)
	h.typeText("boiler/set")
	h.key("tab")
	h.typeText(`{"on":true}`)
	h.key("tab", "right", "tab", "y", "enter")
	h.waitFor("published 11 B to org/acme/boiler/set")
	got := feed.sent()
	if len(got) != 1 || got[0].Topic != "org/acme/boiler/set" || string(got[0].Payload) != `{"on":true}` || got[0].QoS != 1 || !got[0].Retained {
		t.Fatalf("published %+v", got)
	}

	// The form offers the last topic; core's refusal lands under it.
	h.key("s")
	h.waitFor("Publish a message", "org/acme/boiler/set")
	for range len("org/acme/boiler/set") {
		h.key("backspace")
	}
	h.typeText("org/globex/boiler/set")
	h.key("ctrl+s")
	s = h.waitFor("error: you may only publish topics under org/<your organization>/")
	checkFits(t, s, 80, 24)
	if len(feed.sent()) != 1 {
		t.Fatalf("a refused publish was sent: %+v", feed.sent())
	}
	h.key("esc")
	h.waitFor("following")
}

// selectedRow is the row the cursor is on.
func selectedRow(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "> ") {
			return l
		}
	}
	return ""
}

// captureLive renders the Live screen's views for TestCaptures: a member
// following their org, scrolled back and paused, a message in full as
// JSON and as hex, and the publish form.
func captureLive(t *testing.T, w, h int, capture func(hs *harness, name string, want ...string)) {
	t.Helper()
	wd := newWorld(t)
	feed := &fakeFeed{}
	hs := newHarness(t, Deps{Core: wd.core, Live: feed}, wd.member, w, h)
	hs.key("5")
	hs.waitFor("following")
	at := func(s int) time.Time { return testNow.Add(time.Duration(s) * time.Second) }
	feed.send(LiveMessage{Time: at(0), Topic: "org/acme/porch-lamp/state", Payload: []byte("ON"), QoS: 1, Retained: true})
	feed.send(LiveMessage{Time: at(1), Topic: "org/acme/boiler/temperature", Payload: []byte(`{"t":21.5,"rh":40}`)})
	feed.send(LiveMessage{Time: at(2), Topic: "org/acme/gateway/telemetry", QoS: 1,
		Payload: []byte(`{"uptime":86400,"rssi":-67,"fw":"1.4.2","sensors":[{"id":"A1","t":4.5},{"id":"A2","t":5.1}]}`)})
	feed.send(LiveMessage{Time: at(3), Topic: "org/acme/meter/raw", Payload: []byte{0x01, 0x03, 0x04, 0x00, 0xea, 0x01, 0x2c, 0x8f, 0x5b}})
	for i := range 6 {
		feed.send(LiveMessage{Time: at(4 + i), Topic: "org/acme/boiler/temperature", Payload: fmt.Appendf(nil, `{"t":%.1f,"rh":%d}`, 21.6+float64(i)/10, 40+i)})
	}
	capture(hs, "live", "following", "10 messages kept")
	hs.key("g", "down", "down", "space")
	feed.send(LiveMessage{Time: at(11), Topic: "org/acme/porch-lamp/state", Payload: []byte("OFF"), QoS: 1, Retained: true})
	capture(hs, "live-paused", "PAUSED, 1 new")
	hs.key("enter")
	capture(hs, "live-detail-json", "JSON, pretty-printed", `"fw": "1.4.2"`)
	hs.key("right")
	capture(hs, "live-detail-binary", "binary, hex dump", "00000000")
	hs.key("esc", "space", "s")
	hs.typeText("boiler/setpoint")
	hs.key("tab")
	hs.typeText(`{"t":22}`)
	hs.key("tab", "right")
	capture(hs, "live-publish", "Publish a message", "1 at least once")
}
