package backend

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
)

// Log ring defaults.
const (
	// DefaultLogLines is enough to scroll back over a busy hour on the
	// Logs screen; at MaxLogLineLen it bounds the ring to about 10 MB,
	// typically 1 MB.
	DefaultLogLines = 5000
	// MaxLogLineLen bounds one kept line; longer ones are cut.
	MaxLogLineLen = 2048
)

// LogRing keeps the last log lines for the console's System screen. Feed
// it by teeing the process logger's handler into it (Tee).
type LogRing struct {
	h slog.Handler

	mu    sync.Mutex
	lines []string
	next  int
	full  bool
	total uint64
}

// NewLogRing keeps the last n lines (DefaultLogLines if n <= 0) of the
// records at level or above, formatted as logfmt with a short time.
//
// The values of attributes whose key names a secret (password, secret,
// token, credential) are replaced by "[redacted]": the process log may
// carry one on purpose (the admin password generated on first start is
// shown once on stdout), but the console shows the ring to every admin,
// for as long as the line is kept.
func NewLogRing(n int, level slog.Leveler) *LogRing {
	if n <= 0 {
		n = DefaultLogLines
	}
	r := &LogRing{lines: make([]string, n)}
	r.h = slog.NewTextHandler(ringWriter{r}, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
				return slog.String(slog.TimeKey, a.Value.Time().Format("2006-01-02T15:04:05"))
			}
			// A flag such as password_auth=false says how the appliance is
			// set up and cannot be a secret.
			if secretKey(a.Key) && a.Value.Kind() != slog.KindBool {
				return slog.String(a.Key, "[redacted]")
			}
			return a
		},
	})
	return r
}

// secretKey reports whether an attribute key names a secret.
func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"password", "passwd", "secret", "token", "credential"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// Handler is the ring's slog side.
func (r *LogRing) Handler() slog.Handler { return r.h }

// ringWriter receives one formatted record per Write (slog's handlers
// write each record at once).
type ringWriter struct{ r *LogRing }

func (w ringWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	if len(line) > MaxLogLineLen {
		line = strings.ToValidUTF8(line[:MaxLogLineLen], "") + "…"
	}
	w.r.add(line)
	return len(p), nil
}

func (r *LogRing) add(line string) {
	r.mu.Lock()
	r.lines[r.next] = line
	r.total++
	r.next = (r.next + 1) % len(r.lines)
	if r.next == 0 {
		r.full = true
	}
	r.mu.Unlock()
}

// Tail returns the last n lines, oldest first.
func (r *LogRing) Tail(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tailLocked(n)
}

func (r *LogRing) tailLocked(n int) []string {
	size := r.next
	if r.full {
		size = len(r.lines)
	}
	n = min(max(n, 0), size)
	out := make([]string, 0, n)
	for i := r.next - n; i < r.next; i++ {
		out = append(out, r.lines[(i+len(r.lines))%len(r.lines)])
	}
	return out
}

// Snapshot returns every kept line, oldest first, and how many lines
// were ever added: a paused view counts the lines that arrived since by
// the difference of two totals, which the ring's wrap-around cannot fool.
func (r *LogRing) Snapshot() ([]string, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tailLocked(len(r.lines)), r.total
}

// Tee sends every record to primary and to the ring, each according to
// its own level.
func Tee(primary slog.Handler, r *LogRing) slog.Handler {
	return teeHandler{primary, r.h}
}

type teeHandler struct{ a, b slog.Handler }

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t.a.Enabled(ctx, l) || t.b.Enabled(ctx, l)
}

func (t teeHandler) Handle(ctx context.Context, rec slog.Record) error {
	var errs []error
	if t.a.Enabled(ctx, rec.Level) {
		errs = append(errs, t.a.Handle(ctx, rec.Clone()))
	}
	if t.b.Enabled(ctx, rec.Level) {
		errs = append(errs, t.b.Handle(ctx, rec))
	}
	return errors.Join(errs...)
}

func (t teeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return teeHandler{t.a.WithAttrs(attrs), t.b.WithAttrs(attrs)}
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{t.a.WithGroup(name), t.b.WithGroup(name)}
}
