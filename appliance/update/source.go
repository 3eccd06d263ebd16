package update

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// BundleSource is a bundle that can be read from any offset: a file, or a
// URL fetched with Range requests.
type BundleSource interface {
	Open(ctx context.Context, offset int64) (io.ReadCloser, error)
	Size() int64
}

type fileSource struct {
	path string
	size int64
}

// OpenBundle returns a bundle source for a file name or an http(s) URL.
func OpenBundle(ctx context.Context, hc *http.Client, name string) (BundleSource, error) {
	if strings.HasPrefix(name, "http://") || strings.HasPrefix(name, "https://") {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, name, nil)
		if err != nil {
			return nil, fmt.Errorf("bundle: %w", err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("bundle: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ContentLength <= 0 {
			return nil, fmt.Errorf("bundle %s: HTTP %d, length %d", name, resp.StatusCode, resp.ContentLength)
		}
		return &urlSource{url: name, size: resp.ContentLength, hc: hc}, nil
	}
	fi, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return &fileSource{path: name, size: fi.Size()}, nil
}

func (f *fileSource) Size() int64 { return f.size }

func (f *fileSource) Open(_ context.Context, offset int64) (io.ReadCloser, error) {
	file, err := os.Open(f.path)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if _, err := file.Seek(offset, io.SeekStart); err != nil {
		file.Close()
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return file, nil
}

type urlSource struct {
	url  string
	size int64
	hc   *http.Client
}

func (u *urlSource) Size() int64 { return u.size }

func (u *urlSource) Open(ctx context.Context, offset int64) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.url, nil)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	want := http.StatusOK
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		want = http.StatusPartialContent
	}
	resp, err := u.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if resp.StatusCode != want {
		resp.Body.Close()
		return nil, fmt.Errorf("bundle %s from %d: HTTP %d", u.url, offset, resp.StatusCode)
	}
	return resp.Body, nil
}
