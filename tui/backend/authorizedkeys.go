package backend

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"

	"github.com/piot-appliance/piot/internal/authkeys"
	"github.com/piot-appliance/piot/internal/fileutil"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/tui"
)

// AuthorizedKeys implements tui.AuthorizedKeys over
// <data-dir>/authorized_keys, the file the SSH server reads on every
// login (tui/sshserver), so a removal locks the key out at once.
type AuthorizedKeys struct {
	path string
	core *core.Core
	// mu orders this process's rewrites; the file's other writers (piot
	// init's provisioning, the local console's first start) only append
	// once, before anybody could be removing keys.
	mu sync.Mutex
}

// NewAuthorizedKeys reads and edits dataDir/authorized_keys; c authorizes
// and records.
func NewAuthorizedKeys(c *core.Core, dataDir string) *AuthorizedKeys {
	return &AuthorizedKeys{path: filepath.Join(dataDir, "authorized_keys"), core: c}
}

// List implements tui.AuthorizedKeys.
func (k *AuthorizedKeys) List(_ context.Context, a core.Actor) (tui.AuthorizedKeyFile, error) {
	if err := core.AuthorizeAdmin(a, core.ActAuthorizedKeys); err != nil {
		return tui.AuthorizedKeyFile{}, err
	}
	out := tui.AuthorizedKeyFile{Path: k.path}
	data, mode, err := authkeys.Read(k.path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	if !authkeys.Trusted(mode) {
		out.Ignored = "the SSH server ignores the file: others may write it (chmod go-w)"
	}
	for _, e := range authkeys.Parse(data) {
		key := tui.AuthorizedKey{Line: e.Line, Fingerprint: e.Fingerprint(), Comment: e.Comment}
		switch {
		case e.Err != nil:
			key.Skipped = "not a key: " + e.Err.Error()
		case len(e.Options) > 0:
			key.Skipped = "options (" + strings.Join(e.Options, ",") + ") are not supported"
		}
		if e.Key != nil {
			key.Type = e.Key.Type()
		}
		out.Keys = append(out.Keys, key)
	}
	return out, nil
}

// Remove implements tui.AuthorizedKeys: the file is rewritten atomically
// with its mode kept, so the SSH server never reads half a file nor one it
// would then ignore.
func (k *AuthorizedKeys) Remove(ctx context.Context, a core.Actor, fingerprint string) (int, error) {
	if err := core.AuthorizeAdmin(a, core.ActAuthorizedKeys); err != nil {
		return 0, err
	}
	if !strings.HasPrefix(fingerprint, "SHA256:") {
		return 0, core.NewError(core.CodeBadInput, "a key is named by its SHA256: fingerprint")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	data, mode, err := authkeys.Read(k.path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, core.NewError(core.CodeNotFound, "there is no authorized_keys file")
	}
	if err != nil {
		return 0, err
	}
	out, n, err := authkeys.Remove(data, fingerprint)
	if errors.Is(err, authkeys.ErrNoSuchKey) {
		return 0, core.NewError(core.CodeNotFound, "authorized_keys has no key "+fingerprint)
	}
	if err != nil {
		return 0, err
	}
	if err := fileutil.WriteFile(k.path, out, mode.Perm()); err != nil {
		return 0, fmt.Errorf("rewrite authorized_keys: %w", err)
	}
	k.core.Record(ctx, a, "removeAuthorizedKey", "authorized_keys key "+fingerprint)
	return n, nil
}
