package admincli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/piot-appliance/piot/appliance/update"
)

// UpdateAttempts bounds how often Update continues after the connection
// to the appliance dropped.
const UpdateAttempts = 5

// UpdateStatus reads GET /update.
func (c *Client) UpdateStatus(ctx context.Context) (update.Status, error) {
	var st update.Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.URL, "/")+"/update", nil)
	if err != nil {
		return st, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.http().Do(req)
	if err != nil {
		return st, fmt.Errorf("/update: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("/update: HTTP %d: %s", resp.StatusCode, readError(resp.Body))
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("/update: decode response: %w", err)
	}
	return st, nil
}

// UpdateAnswer is POST /update's answer.
type UpdateAnswer struct {
	Error   string `json:"error"`
	Result  string `json:"result"`
	Code    string `json:"code"`
	Version string `json:"version"`
	Slot    string `json:"slot"`
	Offset  *int64 `json:"offset"`
}

// Update sends a bundle to the appliance. An interrupted install of the
// same bundle is continued rather than started over, and a dropped
// connection is retried from where the appliance stopped: on a slow link
// every byte sent once is enough.
func (c *Client) Update(ctx context.Context, src update.BundleSource, progress func(sent, total int64)) (UpdateAnswer, error) {
	first, err := src.Open(ctx, 0)
	if err != nil {
		return UpdateAnswer{}, err
	}
	h, err := update.ReadHeader(first)
	first.Close()
	if err != nil {
		return UpdateAnswer{}, err
	}
	var lastErr error
	for attempt := range UpdateAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return UpdateAnswer{}, ctx.Err()
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
		st, err := c.UpdateStatus(ctx)
		if err != nil {
			lastErr = err
			continue
		}
		offset := int64(0)
		if st.Pending != nil && st.Pending.Digest == h.Digest() {
			offset = st.Pending.Offset
		}
		a, err := c.postBundle(ctx, src, offset, progress)
		switch {
		case err != nil:
			lastErr = err
		case a.Code == "":
			return a, nil
		// BUSY: the appliance may still be finishing the request that dropped.
		case a.Code == "INTERRUPTED" || a.Code == "OFFSET" || a.Code == "BUSY":
			lastErr = errors.New(a.Error)
		default:
			return a, fmt.Errorf("/update: %s (%s)", a.Error, a.Code)
		}
	}
	return UpdateAnswer{}, fmt.Errorf("update: gave up after %d attempts: %w", UpdateAttempts, lastErr)
}

func (c *Client) postBundle(ctx context.Context, src update.BundleSource, offset int64, progress func(sent, total int64)) (UpdateAnswer, error) {
	body, err := src.Open(ctx, offset)
	if err != nil {
		return UpdateAnswer{}, err
	}
	defer body.Close()
	var r io.Reader = body
	if progress != nil {
		r = &progressReader{r: body, sent: offset, total: src.Size(), report: progress}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.URL, "/")+"/update", r)
	if err != nil {
		return UpdateAnswer{}, fmt.Errorf("request: %w", err)
	}
	req.ContentLength = src.Size() - offset
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if offset > 0 {
		req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", offset, src.Size()-1, src.Size()))
	}
	// The upload takes as long as the link needs: no overall timeout.
	hc := *c.http()
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return UpdateAnswer{}, fmt.Errorf("/update: %w", err)
	}
	defer resp.Body.Close()
	var a UpdateAnswer
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(data, &a); err != nil {
		return UpdateAnswer{}, fmt.Errorf("/update: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if resp.StatusCode != http.StatusOK && a.Code == "" {
		a.Code = strconv.Itoa(resp.StatusCode)
	}
	return a, nil
}

func readError(r io.Reader) string {
	data, _ := io.ReadAll(io.LimitReader(r, 64<<10))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		return e.Error
	}
	return strings.TrimSpace(string(data))
}

type progressReader struct {
	r           io.Reader
	sent, total int64
	report      func(sent, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.sent += int64(n)
	p.report(p.sent, p.total)
	return n, err
}

func (s *session) updateCmd() *cobra.Command {
	var reboot string
	cmd := &cobra.Command{
		Use:   "update FILE|URL",
		Short: "Install a signed update bundle into the appliance's inactive slot",
		Long: `Install a signed update bundle (make bundle) into the appliance's
inactive slot; the appliance verifies it before writing anything. An
install interrupted earlier is continued, and a dropped connection is
retried from where it stopped. Reboot the appliance to try the new slot
(--reboot now, or at a quiet hour: --reboot 03:00).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var rebootAt time.Time
			if reboot != "" {
				var err error
				if rebootAt, err = parseRebootTime(reboot, time.Now()); err != nil {
					return err
				}
			}
			if err := s.auth(ctx); err != nil {
				return err
			}
			hc := *s.c.http()
			hc.Timeout = 0
			src, err := update.OpenBundle(ctx, &hc, args[0])
			if err != nil {
				return err
			}
			last := time.Time{}
			a, err := s.c.Update(ctx, src, func(sent, total int64) {
				if time.Since(last) > time.Second || sent == total {
					last = time.Now()
					fmt.Fprintf(cmd.ErrOrStderr(), "\rsent %d of %d bytes (%d%%)", sent, total, sent*100/max(total, 1))
				}
			})
			fmt.Fprintln(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if s.asJSON {
				if err := json.NewEncoder(cmd.OutOrStdout()).Encode(a); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: version %s\n", a.Result, a.Version)
			}
			if reboot == "" {
				return nil
			}
			res, err := s.c.Reboot(ctx, rebootAt, false)
			if err != nil {
				return fmt.Errorf("installed, but the reboot was refused: %w", err)
			}
			fmt.Fprintln(cmd.ErrOrStderr(), res)
			return nil
		},
	}
	cmd.Flags().StringVar(&reboot, "reboot", "", "reboot into the update once installed: now, HH:MM or an RFC 3339 time")
	return cmd
}
