package edge

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/piot-appliance/piot/services/names"
)

// LoadDeviceKeys reads devices' own AES-128 keys, one device per line:
//
//	<device id> <16-byte key>
//
// Blank lines and lines starting with # are skipped; the key is the rest
// of the line after the first space, taken as it is. The file holds
// secrets, so it must not be readable by group or others.
func LoadDeviceKeys(path string) (map[string]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("device keys: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("device keys: %s is accessible by group or others (mode %04o); chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("device keys: %w", err)
	}
	keys := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, key, ok := strings.Cut(line, " ")
		switch {
		case !ok:
			return nil, fmt.Errorf("device keys: %s:%d: want \"<device id> <key>\"", path, n)
		case names.Valid("thing", id) != nil:
			return nil, fmt.Errorf("device keys: %s:%d: invalid device id %q", path, n, id)
		case len(key) != 16:
			return nil, fmt.Errorf("device keys: %s:%d: the key of %s must be exactly 16 bytes, got %d", path, n, id, len(key))
		case keys[id] != "":
			return nil, fmt.Errorf("device keys: %s:%d: device %s listed twice", path, n, id)
		}
		keys[id] = key
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("device keys: %w", err)
	}
	return keys, nil
}
