package admincli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/piot-appliance/piot/appliance/update"
	"github.com/spf13/cobra"
)

// Reboot has the appliance reboot now (at zero) or at a time; cancel
// drops a scheduled reboot instead. It answers what the appliance said.
func (c *Client) Reboot(ctx context.Context, at time.Time, cancel bool) (string, error) {
	var a struct {
		Result string `json:"result"`
	}
	path, method := "/update/reboot", http.MethodPost
	if cancel {
		method = http.MethodDelete
	} else if !at.IsZero() {
		path += "?at=" + url.QueryEscape(at.Format(time.RFC3339))
	}
	err := c.do(ctx, method, path, nil, &a)
	return a.Result, err
}

// parseRebootTime reads --reboot and --at: "now", an RFC 3339 time, or a
// local HH:MM (the next time the clock shows it).
func parseRebootTime(v string, now time.Time) (time.Time, error) {
	if v == "now" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	hm, err := time.ParseInLocation("15:04", v, now.Location())
	if err != nil {
		return time.Time{}, fmt.Errorf("reboot time %q: want now, HH:MM or an RFC 3339 time", v)
	}
	t := time.Date(now.Year(), now.Month(), now.Day(), hm.Hour(), hm.Minute(), 0, 0, now.Location())
	if !t.After(now) {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

func (s *session) rebootCmd() *cobra.Command {
	var at string
	var cancel bool
	cmd := &cobra.Command{
		Use:   "reboot",
		Short: "Reboot the appliance now or at a chosen time (to try an installed update)",
		Long: `Reboot the appliance, now or with --at at a chosen time (HH:MM on this
computer's clock, or an RFC 3339 time): a newly installed update is tried
at that boot and rolled back by itself when it does not become ready.
--cancel drops a scheduled reboot. Only the appliance image can reboot.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := s.auth(ctx); err != nil {
				return err
			}
			when, err := parseRebootTime(at, time.Now())
			if err != nil {
				return err
			}
			res, err := s.c.Reboot(ctx, when, cancel)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), res)
			return nil
		},
	}
	cmd.Flags().StringVar(&at, "at", "now", "when: now, HH:MM or an RFC 3339 time")
	cmd.Flags().BoolVar(&cancel, "cancel", false, "cancel a scheduled reboot")
	return cmd
}

func (s *session) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the appliance's version, system slots and last update",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := s.auth(ctx); err != nil {
				return err
			}
			st, err := s.c.UpdateStatus(ctx)
			if err != nil {
				return err
			}
			if s.asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(st)
			}
			printStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
}

// printStatus writes the status for people.
func printStatus(w io.Writer, st update.Status) {
	slot := st.Slot
	if slot == "" {
		slot = "none (not booted from an A/B slot: updates are off)"
	}
	fmt.Fprintf(w, "version:      %s\nslot:         %s\n", st.Version, slot)
	if st.Slot != "" {
		other := "empty"
		if st.OtherSlotVersion != "" {
			other = st.OtherSlotVersion + " (" + st.OtherSlotState + ")"
		}
		fmt.Fprintf(w, "other slot:   %s\n", other)
	}
	if u := st.LastUpdate; u != nil {
		fmt.Fprintf(w, "last update:  %s", u.Result)
		if u.Version != "" {
			fmt.Fprintf(w, ", version %s", u.Version)
		}
		fmt.Fprintf(w, ", %s\n", u.At.Local().Format(time.DateTime))
		if u.Reason != "" {
			fmt.Fprintf(w, "  reason:     %s\n", u.Reason)
		}
		if u.Detail != "" {
			fmt.Fprintf(w, "  last words: %s\n", u.Detail)
		}
	}
	if p := st.Pending; p != nil {
		fmt.Fprintf(w, "interrupted:  install of %s at %d of %d bytes (piot admin update continues it)\n", p.Version, p.Offset, p.Size)
	}
	if st.RebootAt != nil {
		fmt.Fprintf(w, "reboot at:    %s\n", st.RebootAt.Local().Format(time.DateTime))
	}
}
