package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/piot-appliance/piot/services/adapter/devsim"
	"github.com/spf13/cobra"
)

// envAESKey is the appliance's own variable for the adapter key, so a
// simulator started next to the appliance can share its environment.
const envAESKey = "PIOT_ADAPTER_AES_KEY"

func deviceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "device",
		Short: "Tools for the device adapters",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(deviceSimulateCmd())
	return cmd
}

func deviceSimulateCmd() *cobra.Command {
	var (
		cfg      devsim.Config
		duration time.Duration
		encrypt  bool
		aesKey   string
		logPath  string
	)
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Simulate devices sending packets to the adapters",
		Long: `Simulate devices sending packets to the adapters: PIOT JSON packets to
<url>/adapter (plain, or AES-128 with --encrypt), or VD GPS tracker packets
to <url>/adapter/vdgps with --vdgps.

Device i is named <prefix><i, 4 digits>. Every packet carries its sequence
number 1, 2, 3… (the temperature of sensor T<device>, or encoded in the fix
position) and a device sends the next packet only after the previous one was
accepted. Answers 429 and 503 and network errors are resent (honouring
Retry-After); other refusals are counted as rejected.

The appliance accepts one packet per device per --adapter-min-interval (1s by
default); a faster --rate shows up as resends.

It runs until every device sent --count packets, --duration passed or it is
interrupted, then prints a summary. It exits non-zero if packets were
rejected.`,
		Example: `  piot device simulate --devices 10 --rate 0.5 --count 20
  piot device simulate --devices 100 --rate 0.2 --duration 1m --encrypt --log packets.txt
  piot device simulate --vdgps --devices 5 --count 10`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if encrypt {
				if cfg.VDGPS {
					return errors.New("--encrypt: VD GPS packets have no encryption")
				}
				if aesKey == "" {
					aesKey = os.Getenv(envAESKey)
				}
				if aesKey == "" {
					return fmt.Errorf("--encrypt needs the adapter's AES key: pass --aes-key or set %s", envAESKey)
				}
				if len(aesKey) != 16 {
					return fmt.Errorf("the AES key (--aes-key or %s) must be exactly 16 bytes (AES-128), got %d", envAESKey, len(aesKey))
				}
				cfg.AESKey = aesKey
			}
			if duration < 0 {
				return fmt.Errorf("--duration must be >= 0, got %s", duration)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			out := cmd.OutOrStdout()
			var packetLog *bufio.Writer
			closeLog := func() error { return nil }
			switch logPath {
			case "":
			case "-":
				packetLog = bufio.NewWriter(out)
			default:
				f, err := os.Create(logPath)
				if err != nil {
					return fmt.Errorf("--log: %w", err)
				}
				packetLog, closeLog = bufio.NewWriter(f), f.Close
			}
			if packetLog != nil {
				// Buffered: at benchmark rates a write per packet would cost
				// a system call each.
				cfg.Log = packetLog
			}
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))

			res, err := devsim.Run(ctx, cfg)
			if packetLog != nil {
				if ferr := errors.Join(packetLog.Flush(), closeLog()); ferr != nil {
					err = errors.Join(err, fmt.Errorf("write --log: %w", ferr))
				}
			}
			printSummary(out, cfg, res)
			if err != nil {
				return err
			}
			if res.Rejected > 0 {
				return fmt.Errorf("%d packets rejected (the warnings above say why)", res.Rejected)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.URL, "url", envOr("PIOT_URL", "http://127.0.0.1:8080"), "appliance base URL [env PIOT_URL]")
	f.IntVar(&cfg.Devices, "devices", 1, "number of simulated devices")
	f.Float64Var(&cfg.Rate, "rate", 0.5, "packets per second per device (0: as fast as answered)")
	f.IntVar(&cfg.Count, "count", 0, "packets per device (0: until --duration or interrupted)")
	f.DurationVar(&duration, "duration", 0, "stop after this long (0: no limit)")
	f.StringVar(&cfg.Prefix, "prefix", devsim.DefaultPrefix, "prefix of device names")
	f.BoolVar(&cfg.VDGPS, "vdgps", false, "simulate VD GPS trackers instead of PIOT devices")
	f.BoolVar(&encrypt, "encrypt", false, "encrypt PIOT packets with AES-128 (needs --aes-key or "+envAESKey+")")
	f.StringVar(&aesKey, "aes-key", "", "16-byte AES key for --encrypt [env "+envAESKey+"]")
	f.StringVar(&logPath, "log", "", `write "<device> <seq> <unix time> <status>" per accepted packet to this file ("-": stdout)`)
	return cmd
}

func printSummary(w io.Writer, cfg devsim.Config, res devsim.Result) {
	fmt.Fprintf(w, "%d devices: %d packets ok, %d retried, %d rejected, %d requests in %s (%.1f packets/s)\n",
		cfg.Devices, res.OK, res.Retried, res.Rejected, res.Sent,
		res.Elapsed.Round(time.Millisecond), res.PacketsPerSecond())
}
