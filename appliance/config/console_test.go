package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"
)

// piot console reads the same file and environment as piot run (it used
// to dial 127.0.0.1:2222 whatever they said), declares only the flags it
// uses, and does not trip over the rest of a full configuration file.
func TestConsoleReadsTheRunConfiguration(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "piot.yaml")
	if err := os.WriteFile(file, []byte("data-dir: /srv/piot\nssh-addr: 127.0.0.1:2022\nmqtt-addr: ':1884'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(args, env []string) Config {
		t.Helper()
		c := Default()
		fs := pflag.NewFlagSet("console", pflag.ContinueOnError)
		c.RegisterConsoleFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := c.LoadConsole(fs, env); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := load(nil, nil); c.SSH.Addr != Default().SSH.Addr || c.DataDir != Default().DataDir {
		t.Fatalf("defaults: %q %q", c.SSH.Addr, c.DataDir)
	}
	if c := load([]string{"--config", file}, nil); c.SSH.Addr != "127.0.0.1:2022" || c.DataDir != "/srv/piot" {
		t.Fatalf("file: %q %q", c.SSH.Addr, c.DataDir)
	}
	if c := load(nil, []string{"PIOT_CONFIG=" + file, "PIOT_SSH_ADDR=127.0.0.1:2023"}); c.SSH.Addr != "127.0.0.1:2023" || c.DataDir != "/srv/piot" {
		t.Fatalf("env over file: %q %q", c.SSH.Addr, c.DataDir)
	}
	if c := load([]string{"--ssh-addr", "127.0.0.1:2024", "--data-dir", "/d"}, []string{"PIOT_SSH_ADDR=127.0.0.1:2023"}); c.SSH.Addr != "127.0.0.1:2024" || c.DataDir != "/d" {
		t.Fatalf("flags over env: %q %q", c.SSH.Addr, c.DataDir)
	}
	fs := pflag.NewFlagSet("console", pflag.ContinueOnError)
	c := Default()
	c.RegisterConsoleFlags(fs)
	if fs.Lookup("mqtt-addr") != nil || fs.Lookup("config") == nil {
		t.Fatal("the console declares run's other flags, or lacks --config")
	}
}
