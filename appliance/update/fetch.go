package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// FetchAttempts bounds how often Fetch continues after the download
// dropped.
const FetchAttempts = 5

// FetchProgress is a download the appliance makes itself (the console's
// System screen): how far it got, and how it ended.
type FetchProgress struct {
	URL string `json:"url"`
	// Done and Total are bundle bytes; Done counts what was resumed from.
	Done    int64 `json:"done"`
	Total   int64 `json:"total"`
	Running bool  `json:"running"`
	// Err is why it stopped, empty while it runs or when it installed.
	Err string `json:"error,omitempty"`
}

// fetcher keeps the one download the appliance may be making.
type fetcher struct {
	mu       sync.Mutex
	progress *FetchProgress
	done     atomic.Int64
}

// Progress returns the current or last download; nil when there was none.
func (s *Service) Progress() *FetchProgress {
	s.fetch.mu.Lock()
	defer s.fetch.mu.Unlock()
	if s.fetch.progress == nil {
		return nil
	}
	p := *s.fetch.progress
	p.Done = s.fetch.done.Load()
	return &p
}

// StartFetch downloads and installs the bundle at url in the background,
// for as long as ctx lasts (the appliance's life, not the console
// session's); Progress follows it. It refuses a second download while one
// runs.
func (s *Service) StartFetch(ctx context.Context, hc *http.Client, url string) error {
	if s.Slot == "" {
		return ErrNoSlot
	}
	s.fetch.mu.Lock()
	defer s.fetch.mu.Unlock()
	if s.fetch.progress != nil && s.fetch.progress.Running {
		return ErrBusy
	}
	s.fetch.progress = &FetchProgress{URL: url, Running: true}
	s.fetch.done.Store(0)
	go func() {
		_, _, err := s.Fetch(ctx, hc, url)
		s.fetch.mu.Lock()
		defer s.fetch.mu.Unlock()
		s.fetch.progress.Running = false
		if err != nil {
			s.fetch.progress.Err = err.Error()
			s.Log.Error("update download failed", "url", url, "err", err)
		}
	}()
	return nil
}

// Fetch downloads the bundle at url and installs it, continuing with a
// Range request from where the install stopped when the connection drops
// (FetchAttempts times), as piot admin update does from the other side.
func (s *Service) Fetch(ctx context.Context, hc *http.Client, url string) (Result, Entry, error) {
	src, err := OpenBundle(ctx, hc, url)
	if err != nil {
		return Result{}, Entry{}, err
	}
	s.fetch.mu.Lock()
	if s.fetch.progress != nil {
		s.fetch.progress.Total = src.Size()
	}
	s.fetch.mu.Unlock()
	first, err := src.Open(ctx, 0)
	if err != nil {
		return Result{}, Entry{}, err
	}
	h, err := ReadHeader(first)
	first.Close()
	if err != nil {
		// Not even the header: nothing was written, and it is an outcome.
		s.record(Outcome{Result: ResultRefused, Reason: err.Error(), Slot: Other(s.Slot)})
		return Result{}, Entry{}, err
	}
	var lastErr error
	for attempt := range FetchAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return Result{}, Entry{}, ctx.Err()
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
		offset := int64(0)
		if p, err := s.installer().Pending(); err == nil && p != nil && p.Digest == h.Digest() {
			offset = p.Offset
		}
		body, err := src.Open(ctx, offset)
		if err != nil {
			lastErr = err
			continue
		}
		s.fetch.done.Store(offset)
		res, e, err := s.Install(&countingReader{r: body, n: &s.fetch.done}, offset)
		body.Close()
		var oe *OffsetError
		switch {
		case err == nil:
			return res, e, nil
		case errors.As(err, &oe), errors.Is(err, ErrBusy), !refused(err) && s.pending():
			lastErr = err // the rest comes with the next attempt
		default:
			return res, e, err
		}
	}
	return Result{}, Entry{}, fmt.Errorf("update: gave up downloading %s after %d attempts: %w", url, FetchAttempts, lastErr)
}

// countingReader adds what it reads to n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}
