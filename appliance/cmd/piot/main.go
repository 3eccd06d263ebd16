// Command piot is the whole PIOT appliance in one binary.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/piot-appliance/piot/appliance"
	"github.com/piot-appliance/piot/appliance/admincli"
	"github.com/piot-appliance/piot/appliance/config"
	"github.com/piot-appliance/piot/appliance/initd"
	"github.com/piot-appliance/piot/appliance/localconsole"
	"github.com/piot-appliance/piot/internal/memlimit"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// In the appliance image the kernel starts piot as /init: PID 1.
	if os.Getpid() == 1 {
		initd.Run(version)
		return
	}
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "piot:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "piot",
		Short:         "PIOT: a private IoT platform in one appliance",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCmd(), adapterCmd(), versionCmd(), consoleCmd(), admincli.Command(), deviceCmd(), storeCmd())
	return root
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "piot %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}

func consoleCmd() *cobra.Command {
	cfg := config.Default()
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Open the console of the running appliance on this terminal",
		Long: `Open the console of the running appliance on this terminal (serial or VGA
console of the box). It connects to the appliance's SSH console on loopback
with a key kept in the data directory, so it needs read access to it. It
reads --config, PIOT_CONFIG, PIOT_DATA_DIR and PIOT_SSH_ADDR as piot run
does, so it finds the appliance the same settings started.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.LoadConsole(cmd.Flags(), os.Environ()); err != nil {
				return err
			}
			addr, err := localconsole.DialAddr(cfg.SSH.Addr)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM)
			defer stop()
			return localconsole.Run(ctx, cfg.DataDir, addr)
		},
	}
	cfg.RegisterConsoleFlags(cmd.Flags())
	return cmd
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func runCmd() *cobra.Command {
	cfg := config.Default()
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the appliance",
		Long: `Run the appliance in one process: the store, the core, the MQTT broker,
the ingest and history, the device adapters, the HTTP API (GraphQL,
/adapter, /metrics) and the SSH console.

Every option can also be set in a YAML file (--config; keys are the flag
names) and in the environment (the name in brackets). Precedence:
defaults < YAML < environment < flags. A bad value stops start-up.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if failRun {
				return errors.New("built with the piot_failrun tag: exiting at start, as the update test wants")
			}
			if err := cfg.Load(cmd.Flags(), os.Environ()); err != nil {
				return err
			}
			// Files the appliance creates (store, secrets) are private.
			syscall.Umask(0o077)
			// CPU, not memory, is what an appliance runs out of under load
			// (its heap is tens of MB): collect garbage at 200 % heap growth
			// instead of Go's 100 %, unless GOGC says otherwise.
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(200)
			}
			log := appliance.NewLogger(cfg, os.Stderr)
			for _, k := range cfg.UnknownEnv(os.Environ(), "PIOT_URL", "PIOT_TOKEN", "PIOT_EMAIL", "PIOT_PASSWORD") {
				log.Warn("ignoring unknown environment variable", "name", k)
			}
			// New already opens the store, which a signal may interrupt.
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if os.Getenv("GOMEMLIMIT") == "" && cfg.MemoryBudget > 0 {
				go memlimit.New(uint64(cfg.MemoryBudget)).Run(ctx)
			}
			log.Info("starting piot", "version", version, "data_dir", cfg.DataDir)
			app, err := appliance.New(ctx, cfg, log, version)
			if errors.Is(err, context.Canceled) {
				log.Info("piot stopped")
				return nil
			}
			if err != nil {
				return err
			}
			if cfg.DebugAddr != "" {
				stopProfiler, err := serveProfiler(cfg.DebugAddr, log)
				if err != nil {
					return err
				}
				defer stopProfiler()
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for range hup {
					if err := app.ReloadTLS(); err != nil {
						log.Error("SIGHUP: TLS certificate not reloaded", "err", err)
					} else {
						log.Info("SIGHUP: TLS certificate reloaded")
					}
				}
			}()
			if err := app.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			log.Info("piot stopped")
			return nil
		},
	}
	cfg.RegisterFlags(cmd.Flags())
	return cmd
}
