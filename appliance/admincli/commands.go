package admincli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// Command builds `piot admin`.
func Command() *cobra.Command {
	s := &session{}
	root := &cobra.Command{
		Use:   "admin",
		Short: "Administer a running appliance through its API",
		Long: `Administer a running appliance through its API.

Authenticate with --token (env PIOT_TOKEN), or with --email and --password
(env PIOT_EMAIL, PIOT_PASSWORD), which log in first. "piot admin login"
prints a token for later commands.`,
		SilenceUsage:      true,
		PersistentPreRunE: func(*cobra.Command, []string) error { return s.useCAFile() },
	}
	s.flags(root)
	root.AddCommand(s.loginCmd())
	root.AddCommand(s.orgCmd(), s.userCmd(), s.thingCmd(), s.updateCmd(), s.rebootCmd(), s.statusCmd())
	return root
}

// session is what every subcommand shares: the client, the login and the
// output format, all set by the root command's flags.
type session struct {
	c        Client
	email    string
	password string
	asJSON   bool
	caFile   string
}

func (s *session) flags(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.StringVar(&s.c.URL, "url", envOr("PIOT_URL", "http://127.0.0.1:8080"), "appliance base URL [env PIOT_URL]")
	pf.StringVar(&s.c.Token, "token", os.Getenv("PIOT_TOKEN"), "API token [env PIOT_TOKEN]")
	pf.StringVar(&s.email, "email", os.Getenv("PIOT_EMAIL"), "log in with this email [env PIOT_EMAIL]")
	pf.StringVar(&s.password, "password", os.Getenv("PIOT_PASSWORD"), "log in with this password [env PIOT_PASSWORD]")
	pf.BoolVar(&s.asJSON, "json", false, "print JSON instead of a table")
	pf.StringVar(&s.caFile, "ca-file", os.Getenv("PIOT_CA_FILE"), "PEM CA certificate to verify an https:// URL, e.g. the appliance's own from /ca.crt [env PIOT_CA_FILE]")
}

// useCAFile makes the client trust only --ca-file's CA, when it is given.
func (s *session) useCAFile() error {
	if s.caFile == "" {
		return nil
	}
	hc, err := httpClientWithCA(s.caFile)
	if err != nil {
		return err
	}
	s.c.HTTP = hc
	return nil
}

// auth logs in with --email and --password unless there is a token.
func (s *session) auth(ctx context.Context) error {
	if s.c.Token != "" {
		return nil
	}
	if s.email == "" || s.password == "" {
		return errors.New("not logged in: give --token, or --email and --password")
	}
	_, err := s.c.Login(ctx, s.email, s.password)
	return err
}

// query authenticates and runs one GraphQL operation.
func (s *session) query(ctx context.Context, query string, vars map[string]any, out any) error {
	if err := s.auth(ctx); err != nil {
		return err
	}
	return s.c.Query(ctx, query, vars, out)
}

// out prints v as JSON with --json, else header and rows as a table.
func (s *session) out(cmd *cobra.Command, v any, header []string, rows [][]string) error {
	w := cmd.OutOrStdout()
	if s.asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return table(w, header, rows)
}

func (s *session) loginCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "login",
		Short: "Log in and print a token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if s.email == "" || s.password == "" {
				return errors.New("login needs --email and --password")
			}
			tok, err := s.c.Login(cmd.Context(), s.email, s.password)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
}

func when(unix int64) string {
	if unix == 0 {
		return "-"
	}
	return time.Unix(unix, 0).UTC().Format(time.RFC3339)
}

func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, h := range header {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, h)
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		for i, v := range r {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, v)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
