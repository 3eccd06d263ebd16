package web

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// statusData is the appliance's status page.
type statusData struct {
	Version   string
	GoVersion string
	Started   string
	Uptime    string
	// Ready is /readyz's verdict ("" when ready).
	Ready      string
	ReadyKnown bool
	Services   []ServiceStatus
	// Store is "" when the store answers, else why not.
	Store      string
	StoreKnown bool
	Disk       diskInfo
	Listeners  []Listener
	Stats      core.Stats
}

type diskInfo struct {
	Known             bool
	Dir               string
	Used, Free, Total string
	Percent           int
	// Low: less than a tenth free.
	Low bool
}

// status shows the appliance's health for admins: core decides who may
// see it (ActSeeStatus), also for a member typing the URL.
func (s *Server) status(w http.ResponseWriter, r *http.Request, sess *session) {
	if err := core.AuthorizeAdmin(sess.actor, core.ActSeeStatus); err != nil {
		s.fail(w, r, sess, err)
		return
	}
	stats, err := s.deps.Core.StatsFor(sess.actor)
	if err != nil {
		s.fail(w, r, sess, err)
		return
	}
	ap := s.deps.Appliance
	d := statusData{Version: s.cfg.Version, GoVersion: runtime.Version(), Stats: stats}
	if !ap.Started.IsZero() {
		d.Started = ap.Started.UTC().Format("2006-01-02 15:04:05 UTC")
		d.Uptime = humanDuration(time.Since(ap.Started))
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if ap.Ready != nil {
		d.ReadyKnown = true
		if err := ap.Ready(ctx); err != nil {
			d.Ready = err.Error()
		}
	}
	if ap.Store != nil {
		d.StoreKnown = true
		if err := ap.Store(ctx); err != nil {
			d.Store = err.Error()
		}
	}
	if ap.Services != nil {
		d.Services = ap.Services()
	}
	if ap.Listeners != nil {
		d.Listeners = ap.Listeners()
	}
	if used, total, ok := diskUsage(ap.DataDir); ok {
		d.Disk = diskInfo{Known: true, Dir: ap.DataDir, Used: humanBytes(used), Free: humanBytes(total - used),
			Total: humanBytes(total), Percent: int(used * 100 / total), Low: (total-used)*10 < total}
	}
	s.show(w, r, sess, http.StatusOK, "status", "Appliance status", "/status", d)
}

// humanBytes writes a size with a binary unit (1.5 GiB).
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// humanDuration writes an uptime as days, hours and minutes.
func humanDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	days := int(d / (24 * time.Hour))
	h := int(d % (24 * time.Hour) / time.Hour)
	m := int(d % time.Hour / time.Minute)
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh %dm", days, h, m)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	}
	return fmt.Sprintf("%dm", m)
}
