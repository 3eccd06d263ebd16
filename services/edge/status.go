package edge

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Status is the JSON of GET /status.
type Status struct {
	ID  string `json:"id"`
	Org string `json:"org"`
	// Device is the thing whose own credentials the edge adapter uses
	// (only its packets are taken); empty with an organization's.
	Device string         `json:"device,omitempty"`
	Uplink uplinkSnapshot `json:"uplink"`
	Spool  SpoolStatus    `json:"spool"`
	// Rejected counts refused device packets by reason.
	Rejected map[string]uint64 `json:"rejected"`
}

// SpoolStatus is the spool part of Status.
type SpoolStatus struct {
	Records      uint64  `json:"records"`
	Bytes        int64   `json:"bytes"`
	OldestAgeS   float64 `json:"oldest_age_seconds"`
	Appended     uint64  `json:"appended"`
	Acked        uint64  `json:"acked"`
	Dropped      uint64  `json:"dropped"`
	DroppedBytes uint64  `json:"dropped_bytes"`
	Rejected     uint64  `json:"rejected"`
	Policy       string  `json:"policy"`
	MaxBytes     int64   `json:"max_bytes"`
	MaxAgeS      float64 `json:"max_age_seconds"`
}

// Status reports the uplink, the spool and the refusals.
func (e *Edge) Status() Status {
	st := e.spool.Stats()
	var age float64
	if !st.Oldest.IsZero() {
		age = time.Since(st.Oldest).Seconds()
	}
	return Status{
		ID: e.id, Org: e.cfg.Org, Device: e.device, Uplink: e.up.snapshot(), Rejected: e.rejected.Snapshot(),
		Spool: SpoolStatus{
			Records: st.Records, Bytes: st.Bytes, OldestAgeS: age,
			Appended: st.Appended, Acked: st.Acked, Dropped: st.Dropped, DroppedBytes: st.DroppedBytes,
			Rejected: st.Rejected, Policy: string(e.cfg.Spool.Policy), MaxBytes: e.cfg.Spool.MaxBytes,
			MaxAgeS: e.cfg.Spool.MaxAge.Seconds(),
		},
	}
}

func (e *Edge) serveStatus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(e.Status())
}

// collector exposes Status to Prometheus.
type collector struct {
	e                                                   *Edge
	connected, records, bytes, oldest                   *prometheus.Desc
	appended, acked, dropped, droppedBytes, spoolReject *prometheus.Desc
	forwarded, connects, failures, rejected             *prometheus.Desc
}

func (e *Edge) metricsHandler() http.Handler {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("piot_edge_"+name, help, labels, nil)
	}
	c := &collector{
		e:            e,
		connected:    d("uplink_connected", "1 while the uplink to the appliance is connected."),
		records:      d("spool_records", "Packets in the spool not yet acknowledged by the appliance."),
		bytes:        d("spool_bytes", "Size of the spool on disk."),
		oldest:       d("spool_oldest_age_seconds", "Age of the oldest spooled packet (0 if none)."),
		appended:     d("spool_appended_total", "Packets written to the spool."),
		acked:        d("spool_acked_total", "Spooled packets acknowledged by the appliance."),
		dropped:      d("spool_dropped_total", "Spooled packets dropped unsent (size or age bound)."),
		droppedBytes: d("spool_dropped_bytes_total", "Bytes of spooled packets dropped unsent."),
		spoolReject:  d("spool_rejected_total", "Packets refused because the spool was full (reject-new)."),
		forwarded:    d("forwarded_total", "Packets acknowledged by the appliance."),
		connects:     d("uplink_connects_total", "Successful uplink connections."),
		failures:     d("uplink_failures_total", "Uplink connections that failed or broke."),
		rejected:     d("rejected_total", "Device packets refused, by reason.", "reason"),
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.e.Status()
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	up := 0.0
	if s.Uplink.State == StateConnected {
		up = 1
	}
	gauge(c.connected, up)
	gauge(c.records, float64(s.Spool.Records))
	gauge(c.bytes, float64(s.Spool.Bytes))
	gauge(c.oldest, s.Spool.OldestAgeS)
	counter(c.appended, s.Spool.Appended)
	counter(c.acked, s.Spool.Acked)
	counter(c.dropped, s.Spool.Dropped)
	counter(c.droppedBytes, s.Spool.DroppedBytes)
	counter(c.spoolReject, s.Spool.Rejected)
	counter(c.forwarded, s.Uplink.Forwarded)
	counter(c.connects, s.Uplink.Connects)
	counter(c.failures, s.Uplink.Failures)
	for reason, n := range s.Rejected {
		counter(c.rejected, n, reason)
	}
}
