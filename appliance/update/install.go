package update

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"

	"github.com/piot-appliance/piot/internal/fileutil"
)

// ErrHashMismatch reports a slot image whose SHA-256 is not the signed one.
var ErrHashMismatch = errors.New("slot image does not match the manifest's SHA-256")

// ErrOffset reports a resumed install that does not start where the last
// one stopped; OffsetError carries where it must.
var ErrOffset = errors.New("bundle offset does not continue the partial install")

// OffsetError is the ErrOffset a caller can answer with the right offset.
type OffsetError struct {
	Got, Want int64
}

func (e *OffsetError) Error() string {
	return fmt.Sprintf("%v: got %d, continue from %d", ErrOffset, e.Got, e.Want)
}

func (e *OffsetError) Unwrap() error { return ErrOffset }

// defaultSyncEvery is how much is written between two durable state saves:
// a power cut loses at most this much of a slow download.
const defaultSyncEvery = 1 << 20

// Installer writes verified bundles into one file: the inactive slot's
// image while it is incomplete. Moving it into place once complete is the
// caller's (the slot layout is not this package's business). Beside it, a
// state file records how far it got, so that an interrupted install
// continues instead of starting over on a slow link.
type Installer struct {
	Verifier Verifier
	// Partial is the file the slot image is written to.
	Partial string
	// SyncEvery is how many bytes are written between state saves;
	// zero means 1 MiB.
	SyncEvery int64
}

// Result is what an install wrote.
type Result struct {
	Manifest Manifest
	// Digest identifies the bundle (the SHA-256 of its manifest).
	Digest string
	// Resumed is where a resumed install continued (zero: from the start).
	Resumed int64
}

// state is the state file: enough to verify the bundle again without it
// and to go on hashing where the last run stopped.
type state struct {
	Header  []byte `json:"header"`
	Digest  string `json:"digest"`
	Written int64  `json:"written"`
	Hash    []byte `json:"hash"`
}

func (in Installer) statePath() string { return in.Partial + ".state" }

// Pending describes the partial install, with the bundle offset to
// continue it from; nil when there is none.
func (in Installer) Pending() (*PendingInstall, error) {
	st, h, err := in.loadState()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &PendingInstall{Version: h.Manifest.Version, Digest: h.Digest(), Offset: h.Len() + st.Written, Size: h.Len() + h.Manifest.Slot.Size}, nil
}

// Discard forgets a partial install.
func (in Installer) Discard() error {
	for _, p := range []string{in.statePath(), in.Partial} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("update: %w", err)
		}
	}
	return nil
}

// Install reads a bundle from r, whose first byte is the bundle's byte at
// offset: zero for a new install, which verifies the header before it
// creates anything, or the offset Pending returned, which continues the
// partial install of the same bundle. When r ends early the partial install
// is kept for a later call and the error wraps ErrTruncated; when the image
// does not hash to the manifest's SHA-256 it is discarded.
func (in Installer) Install(r io.Reader, offset int64) (Result, error) {
	if offset == 0 {
		return in.start(r)
	}
	return in.resume(r, offset)
}

func (in Installer) start(r io.Reader) (Result, error) {
	h, err := ReadHeader(r)
	if err != nil {
		return Result{}, err
	}
	if _, err := in.Verifier.Check(h); err != nil {
		return Result{}, err
	}
	// A new bundle replaces whatever partial install there was.
	if err := in.Discard(); err != nil {
		return Result{}, err
	}
	f, err := os.OpenFile(in.Partial, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return Result{}, fmt.Errorf("update: %w", err)
	}
	defer f.Close()
	head, err := h.MarshalBinary()
	if err != nil {
		return Result{}, err
	}
	st := &state{Header: head, Digest: h.Digest()}
	if err := in.copy(f, r, h, st, sha256.New()); err != nil {
		return Result{}, err
	}
	return Result{Manifest: h.Manifest, Digest: st.Digest}, nil
}

func (in Installer) resume(r io.Reader, offset int64) (Result, error) {
	st, h, err := in.loadState()
	if errors.Is(err, fs.ErrNotExist) {
		return Result{}, &OffsetError{Got: offset, Want: 0}
	}
	if err != nil {
		return Result{}, err
	}
	if want := h.Len() + st.Written; offset != want {
		return Result{}, &OffsetError{Got: offset, Want: want}
	}
	sum := sha256.New()
	if err := sum.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.Hash); err != nil {
		return Result{}, fmt.Errorf("update: restoring the hash state: %w", err)
	}
	f, err := os.OpenFile(in.Partial, os.O_RDWR, 0)
	if err != nil {
		return Result{}, fmt.Errorf("update: %w", err)
	}
	defer f.Close()
	// Bytes after the last state save may not have reached the disk
	// whole: drop them and write them again.
	if fi, err := f.Stat(); err != nil || fi.Size() < st.Written {
		return Result{}, errors.Join(fmt.Errorf("update: partial slot image is shorter than its state says"), err, in.Discard())
	}
	if err := f.Truncate(st.Written); err != nil {
		return Result{}, fmt.Errorf("update: %w", err)
	}
	if _, err := f.Seek(st.Written, io.SeekStart); err != nil {
		return Result{}, fmt.Errorf("update: %w", err)
	}
	if err := in.copy(f, r, h, st, sum); err != nil {
		return Result{}, err
	}
	return Result{Manifest: h.Manifest, Digest: st.Digest, Resumed: offset}, nil
}

// copy streams the rest of the slot image from r into f, saving the state
// every SyncEvery bytes and when r ends early.
func (in Installer) copy(f *os.File, r io.Reader, h *Header, st *state, sum hash.Hash) error {
	every := in.SyncEvery
	if every <= 0 {
		every = defaultSyncEvery
	}
	size := h.Manifest.Slot.Size
	buf := make([]byte, 256<<10)
	unsaved := int64(0)
	for st.Written < size {
		want := min(int64(len(buf)), size-st.Written)
		n, rerr := io.ReadFull(r, buf[:want])
		if n > 0 {
			if _, err := f.Write(buf[:n]); err != nil {
				return fmt.Errorf("update: writing the slot image: %w", err)
			}
			sum.Write(buf[:n])
			st.Written += int64(n)
			unsaved += int64(n)
		}
		if rerr != nil {
			if err := in.save(f, st, sum); err != nil {
				return err
			}
			if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: slot image ends after %d of %d bytes; continue from bundle offset %d",
					ErrTruncated, st.Written, size, h.Len()+st.Written)
			}
			return fmt.Errorf("update: reading the bundle after %d of %d bytes (continue from bundle offset %d): %w",
				st.Written, size, h.Len()+st.Written, rerr)
		}
		if unsaved >= every && st.Written < size {
			if err := in.save(f, st, sum); err != nil {
				return err
			}
			unsaved = 0
		}
	}
	if n, _ := r.Read(make([]byte, 1)); n > 0 {
		return errors.Join(fmt.Errorf("%w: data after the slot image", ErrMalformed), in.Discard())
	}
	want, _ := hex.DecodeString(h.Manifest.Slot.SHA256)
	if got := sum.Sum(nil); !bytes.Equal(got, want) {
		return errors.Join(fmt.Errorf("%w: got %x, want %x", ErrHashMismatch, got, want), in.Discard())
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("update: syncing the slot image: %w", err)
	}
	if err := os.Remove(in.statePath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("update: %w", err)
	}
	return nil
}

// save makes the written bytes durable before the state that counts them,
// so that the state never claims more than the disk holds.
func (in Installer) save(f *os.File, st *state, sum hash.Hash) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("update: syncing the slot image: %w", err)
	}
	hs, err := sum.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return fmt.Errorf("update: saving the hash state: %w", err)
	}
	st.Hash = hs
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if err := fileutil.WriteFile(in.statePath(), data, 0o600); err != nil {
		return fmt.Errorf("update: saving the install state: %w", err)
	}
	return nil
}

// loadState reads the state file and verifies its header again: the keys
// or the running version may have changed since it was written.
func (in Installer) loadState() (*state, *Header, error) {
	data, err := os.ReadFile(in.statePath())
	if err != nil {
		return nil, nil, fmt.Errorf("update: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, nil, fmt.Errorf("update: install state %s: %w", in.statePath(), err)
	}
	h, err := ReadHeader(bytes.NewReader(st.Header))
	if err != nil {
		return nil, nil, fmt.Errorf("update: install state %s: %w", in.statePath(), err)
	}
	if _, err := in.Verifier.Check(h); err != nil {
		return nil, nil, err
	}
	if h.Digest() != st.Digest || st.Written < 0 || st.Written > h.Manifest.Slot.Size {
		return nil, nil, fmt.Errorf("update: install state %s does not fit its bundle", in.statePath())
	}
	return &st, h, nil
}
