package update

import (
	"crypto/ed25519"
	"errors"
	"fmt"
)

// Refusals. Each is returned before a byte of the slot is written.
var (
	ErrUnknownKey   = errors.New("bundle signed by a key this appliance does not trust")
	ErrBadSignature = errors.New("bundle signature does not match its manifest")
	ErrWrongTarget  = errors.New("bundle is for another machine")
	ErrTooOld       = errors.New("running version is older than the bundle's minimum")
)

// Verifier decides whether a bundle may be installed here.
type Verifier struct {
	// Keys are the public keys whose signatures this appliance trusts,
	// embedded in the image at build time.
	Keys []ed25519.PublicKey
	// Target is this machine's target (see Target).
	Target string
	// Running is the version that runs now.
	Running string
}

// Check verifies the header's signature first and reads its manifest only
// then, so that nothing an attacker wrote is interpreted unsigned.
func (v Verifier) Check(h *Header) (Manifest, error) {
	var key ed25519.PublicKey
	for _, k := range v.Keys {
		if KeyIDOf(k) == h.KeyID {
			key = k
			break
		}
	}
	if key == nil {
		return Manifest{}, fmt.Errorf("%w (key id %s)", ErrUnknownKey, h.KeyID)
	}
	if !ed25519.Verify(key, h.Raw, h.Signature) {
		return Manifest{}, fmt.Errorf("%w (key id %s)", ErrBadSignature, h.KeyID)
	}
	m, err := parseManifest(h.Raw)
	if err != nil {
		return Manifest{}, err
	}
	if m.Target != v.Target {
		return Manifest{}, fmt.Errorf("%w: bundle target %s, this machine is %s", ErrWrongTarget, m.Target, v.Target)
	}
	if m.MinVersion != "" {
		older, err := olderThan(v.Running, m.MinVersion)
		if err != nil {
			return Manifest{}, fmt.Errorf("%w: bundle %s needs at least %s: %w", ErrTooOld, m.Version, m.MinVersion, err)
		}
		if older {
			return Manifest{}, fmt.Errorf("%w: bundle %s needs at least %s, running %s", ErrTooOld, m.Version, m.MinVersion, v.Running)
		}
	}
	h.Manifest = m
	return m, nil
}
