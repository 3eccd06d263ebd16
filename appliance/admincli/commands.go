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
	var (
		c        Client
		email    string
		password string
		asJSON   bool
	)
	root := &cobra.Command{
		Use:   "admin",
		Short: "Administer a running appliance through its API",
		Long: `Administer a running appliance through its API.

Authenticate with --token (env PIOT_TOKEN), or with --email and --password
(env PIOT_EMAIL, PIOT_PASSWORD), which log in first. "piot admin login"
prints a token for later commands.`,
		SilenceUsage: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&c.URL, "url", envOr("PIOT_URL", "http://127.0.0.1:8080"), "appliance base URL [env PIOT_URL]")
	pf.StringVar(&c.Token, "token", os.Getenv("PIOT_TOKEN"), "API token [env PIOT_TOKEN]")
	pf.StringVar(&email, "email", os.Getenv("PIOT_EMAIL"), "log in with this email [env PIOT_EMAIL]")
	pf.StringVar(&password, "password", os.Getenv("PIOT_PASSWORD"), "log in with this password [env PIOT_PASSWORD]")
	pf.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	var caFile string
	pf.StringVar(&caFile, "ca-file", os.Getenv("PIOT_CA_FILE"), "PEM CA certificate to verify an https:// URL, e.g. the appliance's own from /ca.crt [env PIOT_CA_FILE]")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if caFile == "" {
			return nil
		}
		hc, err := httpClientWithCA(caFile)
		if err != nil {
			return err
		}
		c.HTTP = hc
		return nil
	}

	auth := func(ctx context.Context) error {
		if c.Token != "" {
			return nil
		}
		if email == "" || password == "" {
			return errors.New("not logged in: give --token, or --email and --password")
		}
		_, err := c.Login(ctx, email, password)
		return err
	}
	out := func(cmd *cobra.Command, v any, header []string, rows [][]string) error {
		w := cmd.OutOrStdout()
		if asJSON {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		}
		return table(w, header, rows)
	}

	root.AddCommand(&cobra.Command{
		Use:   "login",
		Short: "Log in and print a token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if email == "" || password == "" {
				return errors.New("login needs --email and --password")
			}
			tok, err := c.Login(cmd.Context(), email, password)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	})

	org := &cobra.Command{Use: "org", Short: "Organisations"}
	var description string
	orgCreate := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an organisation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := auth(cmd.Context()); err != nil {
				return err
			}
			var r struct {
				CreateOrg orgRow `json:"createOrg"`
			}
			err := c.Query(cmd.Context(), `mutation($name: String!, $description: String!) { createOrg(name: $name, description: $description) { id name description created } }`,
				map[string]any{"name": args[0], "description": description}, &r)
			if err != nil {
				return err
			}
			return out(cmd, r.CreateOrg, []string{"ID", "NAME", "DESCRIPTION"}, [][]string{{r.CreateOrg.ID, r.CreateOrg.Name, r.CreateOrg.Description}})
		},
	}
	orgCreate.Flags().StringVar(&description, "description", "", "description")
	org.AddCommand(orgCreate, &cobra.Command{
		Use:   "list",
		Short: "List organisations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := auth(cmd.Context()); err != nil {
				return err
			}
			var r struct {
				Orgs []orgRow `json:"orgs"`
			}
			if err := c.Query(cmd.Context(), `{ orgs { id name description created } }`, nil, &r); err != nil {
				return err
			}
			rows := [][]string{}
			for _, o := range r.Orgs {
				rows = append(rows, []string{o.ID, o.Name, o.Description, when(o.Created)})
			}
			return out(cmd, r.Orgs, []string{"ID", "NAME", "DESCRIPTION", "CREATED"}, rows)
		},
	})

	org.AddCommand(&cobra.Command{
		Use:   "mqtt-credentials ORG USERNAME",
		Short: "Set or rotate an organisation's MQTT credentials; the password is shown only now",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := auth(cmd.Context()); err != nil {
				return err
			}
			var orgs struct {
				Orgs []orgRow `json:"orgs"`
			}
			if err := c.Query(cmd.Context(), `{ orgs { id name } }`, nil, &orgs); err != nil {
				return err
			}
			id := ""
			for _, o := range orgs.Orgs {
				if o.Name == args[0] {
					id = o.ID
				}
			}
			if id == "" {
				return fmt.Errorf("no organisation named %q", args[0])
			}
			var r struct {
				Creds struct {
					Username string `json:"username"`
					Password string `json:"password"`
				} `json:"setOrgMqttCredentials"`
			}
			err := c.Query(cmd.Context(), `mutation($o: ID!, $u: String!) { setOrgMqttCredentials(orgId: $o, username: $u) { username password } }`,
				map[string]any{"o": id, "u": args[1]}, &r)
			if err != nil {
				return err
			}
			return out(cmd, r.Creds, []string{"USERNAME", "PASSWORD"}, [][]string{{r.Creds.Username, r.Creds.Password}})
		},
	})

	user := &cobra.Command{Use: "user", Short: "Users"}
	var userPassword string
	var userAdmin bool
	userCreate := &cobra.Command{
		Use:   "create EMAIL",
		Short: "Create a user",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := auth(cmd.Context()); err != nil {
				return err
			}
			if userPassword == "" {
				return errors.New("user create needs --user-password")
			}
			var r struct {
				CreateUser userRow `json:"createUser"`
			}
			err := c.Query(cmd.Context(), `mutation($email: String!, $password: String!, $admin: Boolean) { createUser(email: $email, password: $password, is_admin: $admin) { id email is_admin created } }`,
				map[string]any{"email": args[0], "password": userPassword, "admin": userAdmin}, &r)
			if err != nil {
				return err
			}
			u := r.CreateUser
			return out(cmd, u, []string{"ID", "EMAIL", "ADMIN"}, [][]string{{u.ID, u.Email, fmt.Sprint(u.IsAdmin)}})
		},
	}
	userCreate.Flags().StringVar(&userPassword, "user-password", "", "password of the new user")
	userCreate.Flags().BoolVar(&userAdmin, "admin", false, "make the user an admin")
	user.AddCommand(userCreate, &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := auth(cmd.Context()); err != nil {
				return err
			}
			var r struct {
				Users []userRow `json:"users"`
			}
			if err := c.Query(cmd.Context(), `{ users { id email is_admin created orgs { name } } }`, nil, &r); err != nil {
				return err
			}
			rows := [][]string{}
			for _, u := range r.Users {
				orgs := ""
				for i, o := range u.Orgs {
					if i > 0 {
						orgs += ","
					}
					orgs += o.Name
				}
				rows = append(rows, []string{u.ID, u.Email, fmt.Sprint(u.IsAdmin), orgs})
			}
			return out(cmd, r.Users, []string{"ID", "EMAIL", "ADMIN", "ORGS"}, rows)
		},
	}, &cobra.Command{
		Use:   "add-to-org EMAIL ORG",
		Short: "Make a user a member of an organisation",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := auth(ctx); err != nil {
				return err
			}
			var r struct {
				Users []userRow `json:"users"`
				Orgs  []orgRow  `json:"orgs"`
			}
			if err := c.Query(ctx, `{ users { id email } orgs { id name } }`, nil, &r); err != nil {
				return err
			}
			var uid, oid string
			for _, u := range r.Users {
				if u.Email == args[0] {
					uid = u.ID
				}
			}
			for _, o := range r.Orgs {
				if o.Name == args[1] {
					oid = o.ID
				}
			}
			if uid == "" {
				return fmt.Errorf("no user %q", args[0])
			}
			if oid == "" {
				return fmt.Errorf("no organisation %q", args[1])
			}
			if err := c.Query(ctx, `mutation($org: ID!, $user: ID!) { addOrgUser(orgId: $org, userId: $user) }`,
				map[string]any{"org": oid, "user": uid}, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is now a member of %s\n", args[0], args[1])
			return nil
		},
	})

	thing := &cobra.Command{Use: "thing", Short: "Things"}
	var all bool
	thingList := &cobra.Command{
		Use:   "list",
		Short: "List things of the active organisation (--all: every thing, admins only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := auth(cmd.Context()); err != nil {
				return err
			}
			var r struct {
				Things []thingRow `json:"things"`
			}
			err := c.Query(cmd.Context(), `query($all: Boolean) { things(all: $all, sort: {field: name, order: asc}) { id name alias type enabled last_seen org { name } sensor { value unit class } } }`,
				map[string]any{"all": all}, &r)
			if err != nil {
				return err
			}
			rows := [][]string{}
			for _, t := range r.Things {
				org, value := "-", ""
				if t.Org != nil {
					org = t.Org.Name
				}
				if t.Sensor != nil {
					value = t.Sensor.Value + " " + t.Sensor.Unit
				}
				rows = append(rows, []string{t.ID, t.Name, t.Alias, t.Type, org, fmt.Sprint(t.Enabled), when(t.LastSeen), value})
			}
			return out(cmd, r.Things, []string{"ID", "NAME", "ALIAS", "TYPE", "ORG", "ENABLED", "LAST SEEN", "VALUE"}, rows)
		},
	}
	thingList.Flags().BoolVar(&all, "all", false, "list every thing (admins only)")
	thing.AddCommand(thingList)

	root.AddCommand(org, user, thing)
	return root
}

type orgRow struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Created     int64  `json:"created"`
}

type userRow struct {
	ID      string   `json:"id"`
	Email   string   `json:"email"`
	IsAdmin bool     `json:"is_admin"`
	Created int64    `json:"created"`
	Orgs    []orgRow `json:"orgs,omitempty"`
}

type thingRow struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	Alias    string  `json:"alias"`
	Type     string  `json:"type"`
	Enabled  bool    `json:"enabled"`
	LastSeen int64   `json:"last_seen"`
	Org      *orgRow `json:"org"`
	Sensor   *struct {
		Value string `json:"value"`
		Unit  string `json:"unit"`
		Class string `json:"class"`
	} `json:"sensor"`
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
