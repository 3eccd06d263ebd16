package admincli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

type userRow struct {
	ID      string   `json:"id"`
	Email   string   `json:"email"`
	IsAdmin bool     `json:"is_admin"`
	Created int64    `json:"created"`
	Orgs    []orgRow `json:"orgs,omitempty"`
}

// userID is the id of the user with email, "" when there is none.
func userID(users []userRow, email string) string {
	id := ""
	for _, u := range users {
		if u.Email == email {
			id = u.ID
		}
	}
	return id
}

// orgNames lists the names of u's organisations, separated by commas.
func (u userRow) orgNames() string {
	names := ""
	for i, o := range u.Orgs {
		if i > 0 {
			names += ","
		}
		names += o.Name
	}
	return names
}

// userCmd is `piot admin user`.
func (s *session) userCmd() *cobra.Command {
	user := &cobra.Command{Use: "user", Short: "Users"}
	user.AddCommand(s.userCreateCmd(), s.userListCmd(), s.userAddToOrgCmd())
	return user
}

func (s *session) userCreateCmd() *cobra.Command {
	var password string
	var admin bool
	cmd := &cobra.Command{
		Use:   "create EMAIL",
		Short: "Create a user",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := s.auth(cmd.Context()); err != nil {
				return err
			}
			if password == "" {
				return errors.New("user create needs --user-password")
			}
			var r struct {
				CreateUser userRow `json:"createUser"`
			}
			err := s.query(cmd.Context(), `mutation($email: String!, $password: String!, $admin: Boolean) { createUser(email: $email, password: $password, is_admin: $admin) { id email is_admin created } }`,
				map[string]any{"email": args[0], "password": password, "admin": admin}, &r)
			if err != nil {
				return err
			}
			u := r.CreateUser
			return s.out(cmd, u, []string{"ID", "EMAIL", "ADMIN"}, [][]string{{u.ID, u.Email, fmt.Sprint(u.IsAdmin)}})
		},
	}
	cmd.Flags().StringVar(&password, "user-password", "", "password of the new user")
	cmd.Flags().BoolVar(&admin, "admin", false, "make the user an admin")
	return cmd
}

func (s *session) userListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r struct {
				Users []userRow `json:"users"`
			}
			if err := s.query(cmd.Context(), `{ users { id email is_admin created orgs { name } } }`, nil, &r); err != nil {
				return err
			}
			rows := [][]string{}
			for _, u := range r.Users {
				rows = append(rows, []string{u.ID, u.Email, fmt.Sprint(u.IsAdmin), u.orgNames()})
			}
			return s.out(cmd, r.Users, []string{"ID", "EMAIL", "ADMIN", "ORGS"}, rows)
		},
	}
}

func (s *session) userAddToOrgCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "add-to-org EMAIL ORG",
		Short: "Make a user a member of an organisation",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var r struct {
				Users []userRow `json:"users"`
				Orgs  []orgRow  `json:"orgs"`
			}
			if err := s.query(ctx, `{ users { id email } orgs { id name } }`, nil, &r); err != nil {
				return err
			}
			uid, oid := userID(r.Users, args[0]), orgID(r.Orgs, args[1])
			if uid == "" {
				return fmt.Errorf("no user %q", args[0])
			}
			if oid == "" {
				return fmt.Errorf("no organisation %q", args[1])
			}
			if err := s.query(ctx, `mutation($org: ID!, $user: ID!) { addOrgUser(orgId: $org, userId: $user) }`,
				map[string]any{"org": oid, "user": uid}, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is now a member of %s\n", args[0], args[1])
			return nil
		},
	}
}
