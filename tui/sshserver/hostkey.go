package sshserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	gossh "golang.org/x/crypto/ssh"
)

// HostKeyFile is the host key's name in the data directory.
const HostKeyFile = "ssh_host_ed25519_key"

// loadOrCreateHostKey returns the server's identity, generating an Ed25519
// key at first start. The key is written to a temporary file and renamed,
// so a crash never leaves half a key behind; it is readable by the owner
// only.
func loadOrCreateHostKey(dir string, log *slog.Logger) (gossh.Signer, error) {
	path := filepath.Join(dir, HostKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		b, err = createHostKey(dir, path)
		if err == nil {
			log.Info("ssh host key generated", "path", path)
		}
	}
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		log.Warn("ssh host key was readable by others; permissions fixed", "path", path)
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, err
		}
	}
	signer, err := gossh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return signer, nil
}

func createHostKey(dir, path string) ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := gossh.MarshalPrivateKey(priv, "piot console host key")
	if err != nil {
		return nil, err
	}
	pemBytes := pem.EncodeToMemory(block)
	tmp, err := os.CreateTemp(dir, ".ssh_host_key-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, err
	}
	if _, err := tmp.Write(pemBytes); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	// Link rather than rename: if another process created the key in the
	// meantime, keep theirs.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return os.ReadFile(path)
		}
		return nil, err
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	pub := gossh.MarshalAuthorizedKey(signer.PublicKey())
	_ = os.WriteFile(path+".pub", pub, 0o644)
	return pemBytes, nil
}
