package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/piot-appliance/piot/appliance"
	"github.com/piot-appliance/piot/appliance/config"
	"github.com/piot-appliance/piot/services/edge"
	"github.com/piot-appliance/piot/services/edge/spool"
	"github.com/spf13/cobra"
)

func adapterCmd() *cobra.Command {
	cfg := config.DefaultEdge()
	cmd := &cobra.Command{
		Use:   "adapter",
		Short: "Run a standalone edge adapter that spools device packets and forwards them to the appliance",
		Long: `Run a standalone edge adapter: devices post their packets to it as they
would to the appliance (POST /adapter, POST /adapter/vdgps); each packet
is checked and written to an on-disk spool before the device gets 200,
then forwarded in order to the appliance over MQTT (QoS 1) on the
organization's reserved topic, and deleted once the appliance has
acknowledged it. With a device's own credentials (--username
thing:<name>) only that device's packets are taken, and forwarded under
its topics. --device-keys lets it check devices that have their own AES
key. GET /status and GET /metrics report the uplink and the spool.

Every option can also be set in a YAML file (--config; keys are the flag
names) and in the environment (the name in brackets). Precedence:
defaults < YAML < environment < flags. A bad value stops start-up.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Load(cmd.Flags(), os.Environ()); err != nil {
				return err
			}
			syscall.Umask(0o077)
			log := appliance.NewLoggerFor(cfg.LogLevel, cfg.LogFormat, os.Stderr)
			broker, useTLS, err := cfg.UplinkBroker()
			if err != nil {
				return err
			}
			var tlsConfig *tls.Config
			if useTLS {
				if tlsConfig, err = pinnedTLS(cfg); err != nil {
					return err
				}
			}
			var keys map[string]string
			if cfg.DeviceKeys != "" {
				if keys, err = edge.LoadDeviceKeys(cfg.DeviceKeys); err != nil {
					return err
				}
			}
			e, err := edge.New(edge.Config{
				Listen: cfg.Listen, VDGPSListen: cfg.VDGPSListen,
				Broker: broker, TLS: tlsConfig, Org: cfg.Org, Username: cfg.Username, Password: cfg.Password,
				SpoolDir: cfg.SpoolDir,
				Spool: spool.Options{MaxBytes: int64(cfg.SpoolMaxBytes), MaxAge: cfg.SpoolMaxAge,
					Policy: spool.Policy(cfg.SpoolPolicy)},
				AESKey: cfg.AESKey, DeviceKeys: keys, MinInterval: config.AdapterMinInterval(cfg.MinInterval), MaxBody: int64(cfg.MaxBody),
				Window: cfg.Window, AckTimeout: cfg.AckTimeout, BackoffMax: cfg.BackoffMax,
				Logger: log,
			})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			e.Start()
			log.Info("edge adapter running", "version", version, "id", e.ID(), "listen", e.Addr(),
				"uplink", cfg.Uplink, "org", cfg.Org, "spool_dir", cfg.SpoolDir)
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			if err := e.Stop(sctx); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			log.Info("edge adapter stopped")
			return nil
		},
	}
	cfg.RegisterFlags(cmd.Flags())
	return cmd
}

// pinnedTLS trusts only the appliance's CA: a GPRS link crosses networks
// nobody at the site controls.
func pinnedTLS(cfg config.Edge) (*tls.Config, error) {
	pem, err := os.ReadFile(cfg.CA)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca: %s holds no PEM certificate", cfg.CA)
	}
	u, err := url.Parse(cfg.Uplink)
	if err != nil {
		return nil, fmt.Errorf("uplink: %w", err)
	}
	host, _, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, fmt.Errorf("uplink: %w", err)
	}
	return &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}, nil
}
