package initd

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/piot-appliance/piot/appliance/config"
	"github.com/piot-appliance/piot/internal/fileutil"
)

// provision creates /data/piot.yaml from the image's defaults at first
// boot, seeded from the kernel command line, and lists piot.admin_key
// in authorized_keys, whose keys log in to the console as the first
// admin. Later boots keep what is there: the file is the admin's.
func (in *Init) provision() error {
	if _, err := os.Stat(configFile); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	in.mu.Lock()
	in.firstBoot = true
	in.mu.Unlock()
	def, err := os.ReadFile(defaultConfig)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	seed := map[string]string{}
	if in.boot.Hostname != "" {
		if err := config.ValidHostname(in.boot.Hostname); err != nil {
			in.con0().notice("piot.hostname ignored: " + err.Error())
		} else {
			seed["hostname"] = in.boot.Hostname
		}
	}
	ip, err := ipSettings(in.boot.IP)
	if err != nil {
		in.con0().notice(err.Error() + " (ignored)")
	}
	for k, v := range ip {
		seed[k] = v
	}
	if in.boot.AdminKey != "" {
		if err := addAuthorizedKey(filepath.Join(dataDir, "authorized_keys"), in.boot.AdminKey); err != nil {
			return err
		}
	}
	// Written under a temporary name first: a power cut during the first
	// boot must not leave a half-seeded file that later boots trust.
	tmp := configFile + ".new"
	if err := fileutil.WriteFile(tmp, def, 0o600); err != nil {
		return err
	}
	if len(seed) > 0 {
		if err := config.Update(tmp, seed); err != nil {
			in.con0().notice("kernel command line settings ignored: " + err.Error())
		}
	}
	return os.Rename(tmp, configFile)
}

func addAuthorizedKey(path, key string) error {
	cur, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if bytes.Contains(cur, []byte(key)) {
		return nil
	}
	if len(cur) > 0 && !bytes.HasSuffix(cur, []byte("\n")) {
		cur = append(cur, '\n')
	}
	cur = append(cur, []byte(key+" piot.admin_key\n")...)
	if err := fileutil.WriteFile(path, cur, 0o600); err != nil {
		return fmt.Errorf("authorized_keys: %w", err)
	}
	return nil
}
