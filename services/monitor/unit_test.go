package monitor

import (
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson/primitive"
)

func TestSMTPConfigValidate(t *testing.T) {
	ok := SMTPConfig{Host: "mail.example.test", Port: 587, From: "piot@example.test", Username: "u", Password: "p", StartTLS: true}
	cases := []struct {
		name string
		mod  func(*SMTPConfig)
		want string // "" valid
	}{
		{"valid", func(*SMTPConfig) {}, ""},
		{"disabled", func(c *SMTPConfig) { *c = SMTPConfig{} }, ""},
		{"settings without host", func(c *SMTPConfig) { c.Host = "" }, "host is required"},
		{"port zero", func(c *SMTPConfig) { c.Port = 0 }, "port 0 out of range"},
		{"port high", func(c *SMTPConfig) { c.Port = 65536 }, "port 65536 out of range"},
		{"no from", func(c *SMTPConfig) { c.From = "" }, "from address is required"},
		{"bad from", func(c *SMTPConfig) { c.From = "not an address" }, "from address"},
		{"display name", func(c *SMTPConfig) { c.From = "PIOT <piot@example.test>" }, "from address"},
		{"header injection", func(c *SMTPConfig) { c.From = "a@b.test\r\nBcc: x@y.test" }, "from address"},
		{"user without password", func(c *SMTPConfig) { c.Password = "" }, "password is required"},
		{"password without user", func(c *SMTPConfig) { c.Username = "" }, "username is required"},
		{"bad host", func(c *SMTPConfig) { c.Host = "mail host" }, "invalid host"},
	}
	for _, tc := range cases {
		c := ok
		tc.mod(&c)
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "\n"):
			t.Errorf("%s: multi-line error %q", tc.name, err)
		}
	}
	if _, err := New(Config{SMTP: SMTPConfig{Host: "x", Port: 25}}, Deps{}); err == nil {
		t.Fatal("New accepted missing deps")
	}
}

func TestDeadlinesHeap(t *testing.T) {
	d := newDeadlines()
	base := time.Unix(1000, 0)
	ids := make([]primitive.ObjectID, 5)
	for i := range ids {
		ids[i] = primitive.NewObjectID()
		d.set(ids[i], base.Add(time.Duration(5-i)*time.Second))
	}
	d.set(ids[0], base) // move the latest to the front
	d.remove(ids[4])
	if at, _ := d.next(); !at.Equal(base) {
		t.Fatalf("next %v", at)
	}
	due := d.popDue(base.Add(3 * time.Second))
	if len(due) != 3 || due[0] != ids[0] || due[1] != ids[3] || due[2] != ids[2] {
		t.Fatalf("due %v", due)
	}
	if d.Len() != 1 || len(d.byID) != 1 {
		t.Fatalf("left %d", d.Len())
	}
}

func TestRetryDelay(t *testing.T) {
	p := retryPolicy{attempts: 5, base: time.Second, max: 30 * time.Second}
	for n := 1; n <= 8; n++ {
		want := min(time.Second<<(n-1), 30*time.Second)
		for range 50 {
			if d := p.delay(n); d < want/2 || d > want {
				t.Fatalf("delay(%d) = %s, want [%s, %s]", n, d, want/2, want)
			}
		}
	}
}

func TestSign(t *testing.T) {
	// HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog")
	got := Sign([]byte("The quick brown fox jumps over the lazy dog"), "key")
	if got != "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8" {
		t.Fatal(got)
	}
}

func TestMailText(t *testing.T) {
	raised := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	x := notification{event: EventCleared, at: raised.Add(90 * time.Second),
		alarm: Alarm{ID: "a1", ThingName: "t1", LastSeen: raised.Unix() - 5, RaisedAt: raised, Interval: 3}}
	subj, body := mailText(x, "org1")
	if subj != "[piot][ok] org1/t1 available again" {
		t.Fatal(subj)
	}
	for _, want := range []string{"2024-05-01T10:00:00Z", "2024-05-01T10:01:30Z", "1m30s"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	msg := string(buildMessage("piot@example.test", "subj\r\nBcc: x@y", body, raised))
	if strings.Contains(msg, "\r\nBcc:") {
		t.Fatal("header injection")
	}
}
