package admincli

import (
	"fmt"

	"github.com/spf13/cobra"
)

type orgRow struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Created     int64  `json:"created"`
}

// orgID is the id of the organisation called name, "" when there is none.
func orgID(orgs []orgRow, name string) string {
	id := ""
	for _, o := range orgs {
		if o.Name == name {
			id = o.ID
		}
	}
	return id
}

// orgCmd is `piot admin org`.
func (s *session) orgCmd() *cobra.Command {
	org := &cobra.Command{Use: "org", Short: "Organisations"}
	org.AddCommand(s.orgCreateCmd(), s.orgListCmd())
	org.AddCommand(s.orgMQTTCredentialsCmd())
	return org
}

func (s *session) orgCreateCmd() *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an organisation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r struct {
				CreateOrg orgRow `json:"createOrg"`
			}
			err := s.query(cmd.Context(), `mutation($name: String!, $description: String!) { createOrg(name: $name, description: $description) { id name description created } }`,
				map[string]any{"name": args[0], "description": description}, &r)
			if err != nil {
				return err
			}
			return s.out(cmd, r.CreateOrg, []string{"ID", "NAME", "DESCRIPTION"}, [][]string{{r.CreateOrg.ID, r.CreateOrg.Name, r.CreateOrg.Description}})
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "description")
	return cmd
}

func (s *session) orgListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List organisations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r struct {
				Orgs []orgRow `json:"orgs"`
			}
			if err := s.query(cmd.Context(), `{ orgs { id name description created } }`, nil, &r); err != nil {
				return err
			}
			rows := [][]string{}
			for _, o := range r.Orgs {
				rows = append(rows, []string{o.ID, o.Name, o.Description, when(o.Created)})
			}
			return s.out(cmd, r.Orgs, []string{"ID", "NAME", "DESCRIPTION", "CREATED"}, rows)
		},
	}
}

func (s *session) orgMQTTCredentialsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "mqtt-credentials ORG USERNAME",
		Short: "Set or rotate an organisation's MQTT credentials; the password is shown only now",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var orgs struct {
				Orgs []orgRow `json:"orgs"`
			}
			if err := s.query(cmd.Context(), `{ orgs { id name } }`, nil, &orgs); err != nil {
				return err
			}
			id := orgID(orgs.Orgs, args[0])
			if id == "" {
				return fmt.Errorf("no organisation named %q", args[0])
			}
			var r struct {
				Creds struct {
					Username string `json:"username"`
					Password string `json:"password"`
				} `json:"setOrgMqttCredentials"`
			}
			err := s.query(cmd.Context(), `mutation($o: ID!, $u: String!) { setOrgMqttCredentials(orgId: $o, username: $u) { username password } }`,
				map[string]any{"o": id, "u": args[1]}, &r)
			if err != nil {
				return err
			}
			return s.out(cmd, r.Creds, []string{"USERNAME", "PASSWORD"}, [][]string{{r.Creds.Username, r.Creds.Password}})
		},
	}
}
