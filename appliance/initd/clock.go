package initd

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/piot-appliance/piot/appliance/initd/sntp"
)

// clockFallbackAfter is how long the boot waits for an NTP answer when
// the clock is implausible (a board without RTC starts in 1970) before it
// takes the image's build time: certificates, tokens and history need a
// clock that at least moves forward from a sane point.
const clockFallbackAfter = 10 * time.Second

// clock runs the SNTP client; SetServers restarts it.
type clock struct {
	log       *slog.Logger
	notBefore time.Time

	mu     sync.Mutex
	syncer *sntp.Syncer
	cancel context.CancelFunc
}

func (in *Init) setClock(servers []string) {
	var notBefore time.Time
	if b, err := os.ReadFile(buildTimeFile); err == nil {
		notBefore, _ = time.Parse(time.RFC3339, strings.TrimSpace(string(b)))
	}
	in.clock = &clock{log: in.log, notBefore: notBefore}
	in.clock.SetServers(servers)
	if sntp.Plausible(time.Now(), notBefore) {
		return
	}
	in.log.Warn("clock not set (no RTC?); waiting for NTP", "now", time.Now().UTC(), "fallback_after", clockFallbackAfter)
	deadline := time.Now().Add(clockFallbackAfter + 2*time.Second)
	for time.Now().Before(deadline) && !sntp.Plausible(time.Now(), notBefore) {
		time.Sleep(200 * time.Millisecond)
	}
}

// SetServers (re)starts synchronisation with servers.
func (c *clock) SetServers(servers []string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.syncer = &sntp.Syncer{Servers: servers, NotBefore: c.notBefore, FallbackAfter: clockFallbackAfter, Log: c.log}
	go c.syncer.Run(ctx)
}

func (c *clock) Synced() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.syncer != nil && c.syncer.Synced()
}

func (c *clock) LastSync() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.syncer == nil {
		return time.Time{}
	}
	return c.syncer.LastSync()
}

func (c *clock) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
	}
}
