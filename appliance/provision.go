package appliance

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/piot-appliance/piot/internal/fileutil"
	"github.com/piot-appliance/piot/services/core"
)

// adminPasswordFile keeps a generated first admin password in the data
// directory.
const adminPasswordFile = "admin-password"

// prepareDataDir creates the data directory (0700) and proves it is
// writable, so a bad directory stops start-up with a clear reason.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
	probe := filepath.Join(dir, ".write-test")
	if err := os.WriteFile(probe, []byte("ok"), 0o600); err != nil {
		return fmt.Errorf("data directory %s is not writable: %w", dir, err)
	}
	if _, err := os.ReadFile(probe); err != nil {
		return fmt.Errorf("data directory %s is not readable: %w", dir, err)
	}
	return os.Remove(probe)
}

// loadOrCreateSecret returns the secret in dir/name, creating it with n
// random bytes (hex) and mode 0600 on first start.
func loadOrCreateSecret(dir, name string, n int) ([]byte, error) {
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < 32 {
			return nil, fmt.Errorf("%s is too short (at least 32 bytes)", path)
		}
		if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("%s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
		}
		return []byte(s), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	raw := make([]byte, n)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("generate %s: %w", name, err)
	}
	s := hex.EncodeToString(raw)
	if err := fileutil.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// provisionAdmin creates the first admin when the store has no users. The
// password comes from the configuration or is generated, logged once and
// written to <data-dir>/admin-password (0600).
func provisionAdmin(ctx context.Context, c *core.Core, dataDir, email, password string, log *slog.Logger) error {
	if c.Stats().Users > 0 {
		return nil
	}
	generated := password == ""
	if generated {
		raw := make([]byte, 15)
		if _, err := rand.Read(raw); err != nil {
			return fmt.Errorf("generate admin password: %w", err)
		}
		password = base64.RawURLEncoding.EncodeToString(raw)
	}
	created, err := c.Bootstrap(ctx, email, password)
	if err != nil {
		return fmt.Errorf("create first admin %s: %s", email, core.Message(err))
	}
	if !created {
		return nil
	}
	if generated {
		path := filepath.Join(dataDir, adminPasswordFile)
		if err := fileutil.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
			return err
		}
		log.Warn("first start: created admin user with a generated password; it is shown only now and kept in the password file; change it after logging in",
			"email", email, "password", password, "file", path)
	} else {
		log.Info("first start: created admin user", "email", email)
	}
	return nil
}
