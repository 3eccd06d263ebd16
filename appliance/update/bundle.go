// Package update reads, verifies and installs signed update bundles
// (issue 14). A bundle is laid out so that everything needed to refuse it
// comes first and is small:
//
//	magic    8 bytes  "PIOTBNDL"
//	key id   8 bytes  first bytes of SHA-256 of the signer's ed25519 public key
//	sig     64 bytes  ed25519 signature over the exact manifest bytes
//	length   4 bytes  big-endian length of the manifest (at most MaxManifest)
//	manifest          JSON, see Manifest
//	payload           the system slot image, exactly Manifest.Slot.Size bytes
//
// A verifier reads the first 84 bytes plus the manifest, checks the
// signature, the target and the version, and only then looks at the
// payload, which it streams into the inactive slot while hashing it.
// The key id is a hint that tells "signed by a key we do not trust" apart
// from "signature does not match"; it is not trusted by itself.
package update

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"
)

// Magic starts every bundle.
const Magic = "PIOTBNDL"

// FormatVersion is the manifest's format; a verifier refuses others
// rather than guess at fields it does not know.
const FormatVersion = 1

// MaxManifest bounds the manifest a verifier reads before the signature is
// checked, so that a hostile length cannot make it allocate much.
const MaxManifest = 64 << 10

// fixedHeader is the size of magic, key id, signature and length.
const fixedHeader = len(Magic) + KeyIDSize + ed25519.SignatureSize + 4

// KeyIDSize is the length of a KeyID.
const KeyIDSize = 8

// KeyID names a public key inside a bundle.
type KeyID [KeyIDSize]byte

func (k KeyID) String() string { return hex.EncodeToString(k[:]) }

// KeyIDOf returns the id a bundle signed by the key's private half carries.
func KeyIDOf(pub ed25519.PublicKey) KeyID {
	sum := sha256.Sum256(pub)
	var id KeyID
	copy(id[:], sum[:])
	return id
}

// Manifest describes a bundle. Its bytes as stored in the bundle are what
// the signature covers; it is re-encoded by nobody.
type Manifest struct {
	Format    int       `json:"format"`
	Version   string    `json:"version"`
	BuildTime time.Time `json:"build_time"`
	// Target is the machine the slot image boots on (x86_64, aarch64).
	Target string `json:"target"`
	Slot   Slot   `json:"slot"`
	// MinVersion is the oldest running version that may install this
	// bundle (empty: any), for updates that need an intermediate step.
	MinVersion string `json:"min_version,omitempty"`
}

// Slot is the system slot image the bundle carries.
type Slot struct {
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Target returns the manifest target of the machine this program runs on,
// named as the kernel's uname -m does.
func Target() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "arm":
		return "armv7l"
	default:
		return runtime.GOARCH
	}
}

// Header is a bundle's part before the payload, as read from it.
type Header struct {
	KeyID     KeyID
	Signature []byte
	// Raw holds the manifest bytes exactly as signed.
	Raw      []byte
	Manifest Manifest
}

// Len is the number of bundle bytes before the payload.
func (h *Header) Len() int64 { return int64(fixedHeader + len(h.Raw)) }

// Digest identifies the bundle: a resumed install continues only the
// install of the same manifest.
func (h *Header) Digest() string {
	sum := sha256.Sum256(h.Raw)
	return hex.EncodeToString(sum[:])
}

// MarshalBinary returns the header's bytes as they stand in the bundle.
func (h *Header) MarshalBinary() ([]byte, error) {
	if len(h.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("update: signature is %d bytes, want %d", len(h.Signature), ed25519.SignatureSize)
	}
	if len(h.Raw) > MaxManifest {
		return nil, fmt.Errorf("update: manifest is %d bytes, at most %d", len(h.Raw), MaxManifest)
	}
	var b bytes.Buffer
	b.WriteString(Magic)
	b.Write(h.KeyID[:])
	b.Write(h.Signature)
	_ = binary.Write(&b, binary.BigEndian, uint32(len(h.Raw)))
	b.Write(h.Raw)
	return b.Bytes(), nil
}

// ErrMalformed reports a bundle whose layout or manifest is not one this
// program writes.
var ErrMalformed = errors.New("malformed bundle")

// ErrTruncated reports a bundle that ends before its declared end.
var ErrTruncated = errors.New("truncated bundle")

// ReadHeader reads the bundle's header from r, leaving r at the payload.
// It checks the layout only; Verifier.Check decides whether to trust it.
func ReadHeader(r io.Reader) (*Header, error) {
	fixed := make([]byte, fixedHeader)
	if _, err := io.ReadFull(r, fixed); err != nil {
		return nil, shortRead("header", err)
	}
	if string(fixed[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("%w: not a PIOT bundle (no %q at its start)", ErrMalformed, Magic)
	}
	h := &Header{}
	p := fixed[len(Magic):]
	copy(h.KeyID[:], p[:KeyIDSize])
	p = p[KeyIDSize:]
	h.Signature = bytes.Clone(p[:ed25519.SignatureSize])
	n := binary.BigEndian.Uint32(p[ed25519.SignatureSize:])
	if n == 0 || n > MaxManifest {
		return nil, fmt.Errorf("%w: manifest length %d (at most %d)", ErrMalformed, n, MaxManifest)
	}
	h.Raw = make([]byte, n)
	if _, err := io.ReadFull(r, h.Raw); err != nil {
		return nil, shortRead("manifest", err)
	}
	return h, nil
}

func shortRead(part string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: it ends inside its %s", ErrTruncated, part)
	}
	return fmt.Errorf("update: reading the bundle's %s: %w", part, err)
}

// parseManifest decodes a manifest strictly: unknown fields mean a format
// this program does not understand.
func parseManifest(raw []byte) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("%w: manifest: %w", ErrMalformed, err)
	}
	if dec.More() {
		return Manifest{}, fmt.Errorf("%w: manifest: data after the JSON object", ErrMalformed)
	}
	switch {
	case m.Format != FormatVersion:
		return Manifest{}, fmt.Errorf("%w: manifest format %d, this program reads %d", ErrMalformed, m.Format, FormatVersion)
	case m.Version == "":
		return Manifest{}, fmt.Errorf("%w: manifest has no version", ErrMalformed)
	case m.Target == "":
		return Manifest{}, fmt.Errorf("%w: manifest has no target", ErrMalformed)
	case m.Slot.Size <= 0:
		return Manifest{}, fmt.Errorf("%w: slot size %d", ErrMalformed, m.Slot.Size)
	}
	if sum, err := hex.DecodeString(m.Slot.SHA256); err != nil || len(sum) != sha256.Size {
		return Manifest{}, fmt.Errorf("%w: slot sha256 %q is not a SHA-256 in hex", ErrMalformed, m.Slot.SHA256)
	}
	return m, nil
}

// Write writes a bundle of the slot image read from slot, whose size and
// SHA-256 the manifest already names, signed with key. The manifest's
// Format is set here.
func Write(w io.Writer, m Manifest, key ed25519.PrivateKey, slot io.Reader) error {
	m.Format = FormatVersion
	raw, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("update: encoding the manifest: %w", err)
	}
	if _, err := parseManifest(raw); err != nil {
		return err
	}
	h := &Header{
		KeyID:     KeyIDOf(key.Public().(ed25519.PublicKey)),
		Signature: ed25519.Sign(key, raw),
		Raw:       raw,
	}
	head, err := h.MarshalBinary()
	if err != nil {
		return err
	}
	if _, err := w.Write(head); err != nil {
		return fmt.Errorf("update: writing the bundle: %w", err)
	}
	n, err := io.Copy(w, slot)
	if err != nil {
		return fmt.Errorf("update: writing the slot image: %w", err)
	}
	if n != m.Slot.Size {
		return fmt.Errorf("update: slot image is %d bytes, the manifest says %d", n, m.Slot.Size)
	}
	return nil
}
