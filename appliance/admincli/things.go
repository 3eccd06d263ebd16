package admincli

import (
	"fmt"

	"github.com/spf13/cobra"
)

type thingRow struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Alias    string     `json:"alias"`
	Type     string     `json:"type"`
	Enabled  bool       `json:"enabled"`
	LastSeen int64      `json:"last_seen"`
	Org      *orgRow    `json:"org"`
	Sensor   *sensorRow `json:"sensor"`
}

type sensorRow struct {
	Value string `json:"value"`
	Unit  string `json:"unit"`
	Class string `json:"class"`
}

var thingHeader = []string{"ID", "NAME", "ALIAS", "TYPE", "ORG", "ENABLED", "LAST SEEN", "VALUE"}

// cells is t's line of the table: "-" for no organisation, the value
// with its unit for a sensor.
func (t thingRow) cells() []string {
	org, value := "-", ""
	if t.Org != nil {
		org = t.Org.Name
	}
	if t.Sensor != nil {
		value = t.Sensor.Value + " " + t.Sensor.Unit
	}
	return []string{t.ID, t.Name, t.Alias, t.Type, org, fmt.Sprint(t.Enabled), when(t.LastSeen), value}
}

// thingCmd is `piot admin thing`.
func (s *session) thingCmd() *cobra.Command {
	thing := &cobra.Command{Use: "thing", Short: "Things"}
	thing.AddCommand(s.thingListCmd())
	return thing
}

func (s *session) thingListCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List things of the active organisation (--all: every thing, admins only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r struct {
				Things []thingRow `json:"things"`
			}
			err := s.query(cmd.Context(), `query($all: Boolean) { things(all: $all, sort: {field: name, order: asc}) { id name alias type enabled last_seen org { name } sensor { value unit class } } }`,
				map[string]any{"all": all}, &r)
			if err != nil {
				return err
			}
			rows := [][]string{}
			for _, t := range r.Things {
				rows = append(rows, t.cells())
			}
			return s.out(cmd, r.Things, thingHeader, rows)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "list every thing (admins only)")
	return cmd
}
