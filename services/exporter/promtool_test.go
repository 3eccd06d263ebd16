package exporter

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestPromtoolCheckMetrics lints the full output (every collector, every
// kind of thing) with Debian's promtool, as node_exporter does in its CI.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := tool(t, "/usr/bin/promtool")
	f := newFixture(t)
	h := newExporter(t, fakeSources(f.core)).Handler(BearerAuthorizer(globalToken, f.orgToken))
	for _, tok := range []string{globalToken, farmToken} {
		code, _, body := scrape(t, h, tok)
		if code != 200 {
			t.Fatalf("status %d", code)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		if err != nil || strings.TrimSpace(out.String()) != "" {
			t.Errorf("promtool check metrics (%s scope): %v\n%s", tok, err, out.String())
		}
	}
}
