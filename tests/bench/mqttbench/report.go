package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

type envInfo struct {
	Date       string  `json:"date"`
	CPU        string  `json:"cpu"`
	Kernel     string  `json:"kernel"`
	Go         string  `json:"go"`
	Mosquitto  string  `json:"mosquitto,omitempty"`
	Piot       string  `json:"piot,omitempty"`
	DataFS     string  `json:"data_fs"`
	FsyncP50MS float64 `json:"fsync_p50_ms"`
	FsyncP99MS float64 `json:"fsync_p99_ms"`
	Payload    int     `json:"payload_bytes"`
	Inflight   int     `json:"qos1_window"`
	BcryptCost int     `json:"bcrypt_cost"`
}

type brokerResults struct {
	FirstConnectMS float64     `json:"first_connect_ms"`
	Throughput     []tpResult  `json:"throughput"`
	Latency        []latResult `json:"latency"`
	// Sustained is the appliance under the -things load for -sustained.
	Sustained []sustainedResult `json:"sustained,omitempty"`
	// ThingsSetupS is how long making the -things things took.
	ThingsSetupS float64 `json:"things_setup_s,omitempty"`
}

// row is one line of the comparison table.
type row struct {
	Case      string   `json:"case"`
	Unit      string   `json:"unit"`
	Mosquitto *float64 `json:"mosquitto"`
	Appliance *float64 `json:"appliance"`
	Ratio     *float64 `json:"ratio_appliance_over_mosquitto"`
	mText     string
	aText     string
}

type target struct {
	Target string `json:"target"`
	Met    bool   `json:"met"`
	Detail string `json:"detail"`
}

type report struct {
	Env     envInfo                   `json:"env"`
	Results map[string]*brokerResults `json:"results"`
	Rows    []row                     `json:"table"`
	Targets []target                  `json:"targets"`
	Notes   []string                  `json:"notes"`
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// cell formats the median of xs, with the range when there are repeats.
func cell(xs []float64, format func(float64) string) (*float64, string) {
	if len(xs) == 0 {
		return nil, "–"
	}
	m := median(xs)
	txt := format(m)
	if len(xs) > 1 {
		txt += fmt.Sprintf(" (%s–%s)", format(slices.Min(xs)), format(slices.Max(xs)))
	}
	return &m, txt
}

func rateFmt(v float64) string { return group(int64(math.Round(v))) }

func msFmt(v float64) string {
	switch {
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// group writes 12345 as 12 345.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (rep *report) tp(broker string, qos, n, things int) []tpResult {
	br := rep.Results[broker]
	if br == nil {
		return nil
	}
	var out []tpResult
	for _, r := range br.Throughput {
		if r.QoS == qos && r.Publishers == n && r.Things == things {
			out = append(out, r)
		}
	}
	return out
}

func (rep *report) lat(broker string) []latResult {
	if br := rep.Results[broker]; br != nil {
		return br.Latency
	}
	return nil
}

func (rep *report) add(name, unit string, m, a []float64, mNote, aNote string, format func(float64) string) {
	r := row{Case: name, Unit: unit}
	r.Mosquitto, r.mText = cell(m, format)
	r.Appliance, r.aText = cell(a, format)
	if r.Mosquitto != nil && mNote != "" {
		r.mText += " " + mNote
	}
	if r.Appliance != nil && aNote != "" {
		r.aText += " " + aNote
	}
	if r.Mosquitto != nil && r.Appliance != nil && *r.Mosquitto > 0 {
		q := *r.Appliance / *r.Mosquitto
		r.Ratio = &q
	}
	rep.Rows = append(rep.Rows, r)
}

// build fills the table and the targets from the results.
func (rep *report) build(o options) {
	pick := func(rs []tpResult, f func(tpResult) float64) []float64 {
		var xs []float64
		for _, r := range rs {
			xs = append(xs, f(r))
		}
		return xs
	}
	deliveredNote := func(rs []tpResult) string {
		worst := 1.0
		for _, r := range rs {
			worst = min(worst, r.Delivered)
		}
		if worst < 1 {
			return fmt.Sprintf("(%.1f %% delivered)", 100*worst)
		}
		return ""
	}
	rate := func(r tpResult) float64 { return r.Rate }
	for _, q := range o.qos {
		for _, n := range o.pubs {
			m, a := rep.tp("mosquitto", q, n, 0), rep.tp("appliance", q, n, 0)
			if len(m)+len(a) == 0 {
				continue
			}
			name := fmt.Sprintf("QoS %d throughput, %d publisher%s", q, n, plural(n))
			unit := "msg/s until every PUBACK"
			if q == 0 {
				unit = "msg/s delivered to a subscriber"
			}
			rep.add(name, unit, pick(m, rate), pick(a, rate), deliveredNote(m), deliveredNote(a), rateFmt)
		}
	}
	if o.things > 0 {
		m, a := rep.tp("mosquitto", 1, o.thingsPubs, o.things), rep.tp("appliance", 1, o.thingsPubs, o.things)
		rep.add(fmt.Sprintf("QoS 1 throughput, %d publishers over %s things", o.thingsPubs, group(int64(o.things))),
			"msg/s until every PUBACK", pick(m, rate), pick(a, rate), "", "", rateFmt)
		if len(m) > 0 && len(a) > 0 {
			q := median(pick(a, rate)) / median(pick(m, rate))
			// The goals: 0.8 × with 1 000 things, 0.6 × with 10 000.
			goal := 0.8
			if o.things >= 10000 {
				goal = 0.6
			}
			rep.Targets = append(rep.Targets, target{
				Target: fmt.Sprintf("appliance QoS 1 throughput over %s things ≥ %.1f × mosquitto", group(int64(o.things)), goal),
				Met:    q >= goal,
				Detail: fmt.Sprintf("%.2f × (%s vs %s msg/s)", q, rateFmt(median(pick(a, rate))), rateFmt(median(pick(m, rate)))),
			})
		}
	}
	if br := rep.Results["appliance"]; br != nil {
		for _, r := range br.Sustained {
			name := fmt.Sprintf("appliance, %s s QoS 1 over %s things (%d pubs)", msFmt(r.DurationS), group(int64(r.Things)), r.Publishers)
			rep.add(name+": PUBACKed", "msg/s", nil, []float64{r.AckedRate}, "", "", rateFmt)
			rep.add(name+": stored in history", "msg/s, all acknowledged readings, timed from the first publish", nil, []float64{r.StoredRate}, "", "", rateFmt)
			rep.add(name+": largest backlog journal → history", "readings", nil, []float64{float64(r.MaxBacklog)}, "", "", rateFmt)
			rep.add(name+": peak RSS", "MB", nil, []float64{r.PeakRSSMB}, "", "", rateFmt)
			ratio := r.StoredRate / r.AckedRate
			rep.Targets = append(rep.Targets,
				target{Target: "history keeps pace: stored ≥ 0.95 × PUBACKed over the sustained run", Met: r.Complete && ratio >= 0.95,
					Detail: fmt.Sprintf("%.2f × (%s vs %s msg/s; caught up %.1f s after the last PUBACK; all stored: %v)", ratio, rateFmt(r.StoredRate), rateFmt(r.AckedRate), r.CatchUpS, r.Complete)},
				target{Target: "≥ 25 000 readings/s into history", Met: r.StoredRate >= 25000, Detail: rateFmt(r.StoredRate) + " readings/s"},
				target{Target: "RSS ≤ 200 MB under that load", Met: r.PeakRSSMB <= 200, Detail: fmt.Sprintf("peak %.0f MB", r.PeakRSSMB)})
			verified := fmt.Sprintf("%s things checked", group(int64(r.Verified)))
			if r.VerifyError != "" {
				verified += ": " + r.VerifyError
			}
			rep.Targets = append(rep.Targets, target{Target: "thing state and history correct for every thing after the sustained run",
				Met: r.VerifyError == "" && r.Verified == r.Things, Detail: verified})
		}
	}
	ml, al := rep.lat("mosquitto"), rep.lat("appliance")
	if len(ml)+len(al) > 0 {
		lf := func(rs []latResult, f func(latResult) float64) []float64 {
			var xs []float64
			for _, r := range rs {
				xs = append(xs, f(r))
			}
			return xs
		}
		at := fmt.Sprintf("%s msg/s QoS 1 (%d pubs)", group(int64(o.load.rate)), o.load.ratePubs)
		rep.add(at+": p50 publish→stored", "ms; appliance: PUBACK after journal fsync; mosquitto: PUBACK from memory",
			lf(ml, func(r latResult) float64 { return r.Stored.P50 }), lf(al, func(r latResult) float64 { return r.Stored.P50 }), "", "", msFmt)
		rep.add(at+": p99 publish→stored", "ms",
			lf(ml, func(r latResult) float64 { return r.Stored.P99 }), lf(al, func(r latResult) float64 { return r.Stored.P99 }), "", "", msFmt)
		if len(al) > 0 {
			rep.add(at+": p50 publish→visible in thing state", "ms (GraphQL poll, upper bound)",
				nil, lf(al, func(r latResult) float64 { return r.Visible.P50 }), "", "", msFmt)
			rep.add(at+": p99 publish→visible in thing state", "ms (GraphQL poll, upper bound)",
				nil, lf(al, func(r latResult) float64 { return r.Visible.P99 }), "", "", msFmt)
		}
	}

	// Targets.
	if slices.Contains(o.qos, 1) {
		for _, n := range o.pubs {
			m, a := pick(rep.tp("mosquitto", 1, n, 0), rate), pick(rep.tp("appliance", 1, n, 0), rate)
			if len(m) == 0 || len(a) == 0 {
				continue
			}
			q := median(a) / median(m)
			rep.Targets = append(rep.Targets, target{
				Target: fmt.Sprintf("appliance QoS 1 throughput ≥ 0.8 × mosquitto, %d publisher%s", n, plural(n)),
				Met:    q >= 0.8,
				Detail: fmt.Sprintf("%.2f × (%s vs %s msg/s)", q, rateFmt(median(a)), rateFmt(median(m))),
			})
		}
	}
	if slices.Contains(o.qos, 0) {
		for _, n := range o.pubs {
			m, a := rep.tp("mosquitto", 0, n, 0), rep.tp("appliance", 0, n, 0)
			if len(m) == 0 || len(a) == 0 {
				continue
			}
			share := func(rs []tpResult) float64 {
				return median(pick(rs, func(r tpResult) float64 { return r.Delivered }))
			}
			rep.Targets = append(rep.Targets, target{
				Target: fmt.Sprintf("QoS 0 share delivered to one subscriber ≥ mosquitto's, %d publisher%s", n, plural(n)),
				Met:    share(a) >= share(m),
				Detail: fmt.Sprintf("%.1f %% vs %.1f %%", 100*share(a), 100*share(m)),
			})
		}
	}
	if len(al) > 0 {
		var p99s []float64
		for _, r := range al {
			p99s = append(p99s, r.Stored.P99)
		}
		p := median(p99s)
		rep.Targets = append(rep.Targets, target{
			Target: fmt.Sprintf("appliance p99 publish→stored ≤ 50 ms at %s msg/s", group(int64(o.load.rate))),
			Met:    p <= 50,
			Detail: fmt.Sprintf("p99 %s ms (p50 %s ms, max %s ms, %d messages)", msFmt(p), msFmt(al[0].Stored.P50), msFmt(al[0].Stored.Max), al[0].Measured),
		})
	}

	l := o.load
	nagle := "set_tcp_nodelay true (Nagle off, as Go does for the appliance; mosquitto's default would add up to one publish interval to PUBACK latency)"
	if o.nagle {
		nagle = "Nagle's algorithm on (mosquitto's default, -mosquitto-nagle)"
	}
	rep.Notes = []string{
		fmt.Sprintf("Payload: %d-byte JSON {\"v\":<n>,\"pad\":\"x…\"}; the appliance's sensor things read \"v\" (measurement_value), so every message is ingested (journal, thing state, history).", l.payloadSize),
		"Appliance: piot run with the org ACL, ingest and history on; publishers log in with the org's MQTT credentials and publish to org/bench/T<k>/value (one enabled sensor thing per publisher, new things for every case unless -reuse-things). Mosquitto: anonymous, persistence false, max_inflight_messages 100, same topics; " + nagle + ".",
		"\"Stored\" on the appliance = PUBACK received: the appliance sends PUBACK only after the message's journal record is fsynced (group commit), which is what makes it crash-safe. Mosquitto's PUBACK means \"in memory\", nothing is durable.",
		fmt.Sprintf("QoS 1 throughput: N publishers each send M messages with a window of %d unacknowledged; the time runs until the last PUBACK. QoS 0: the time runs until a subscriber on org/bench/# (the org's credentials on the appliance) got the last message; a run that loses messages shows the delivered share.", l.inflight),
		fmt.Sprintf("Each throughput case: connect, %s warm-up (excluded; with -m 0 its rate sizes M so the case takes about %s), wait until the broker is idle and other processes use < %.2f cores (at most %s), measure; %d run(s) per case, the table shows the median (and the range). Both brokers run throughout and the runs alternate between them (mosquitto, appliance, mosquitto, …), so that drift in the machine's speed affects both alike.", l.warmup, l.caseTime, l.quietCores, l.quietWait, o.repeats),
		fmt.Sprintf("Latency: %s msg/s QoS 1 spread evenly over %d publishers for %s after a %s warm-up; times from the publish call (monotonic clock). Publish→visible: every %dth message carries a fresh value; its thing is polled with GraphQL thing(id){sensor{value} last_seen} every %s (back to back when a poll takes longer) and the latency is taken when the poll response shows the value, so it is an upper bound with a resolution of the poll interval plus one poll round trip.",
			group(int64(l.rate)), l.ratePubs, l.rateTime, l.rateWarmup, l.sampleEvery, l.pollEvery),
		"Client, broker and appliance share this machine's CPUs; the client (paho.mqtt.golang) costs CPU too, see the details table.",
	}
	worst := 0.0
	for _, br := range rep.Results {
		for _, r := range br.Throughput {
			worst = max(worst, r.OtherCPU)
		}
		for _, r := range br.Latency {
			worst = max(worst, r.OtherCPU)
		}
	}
	if worst > 0.3 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("WARNING: other processes used up to %.2f cores during a measurement (column \"other cores\"): the machine was shared, those numbers are disturbed.", worst))
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (rep *report) markdown(w io.Writer) {
	e := rep.Env
	fmt.Fprintf(w, "## MQTT benchmark: plain mosquitto vs piot appliance\n\n")
	fmt.Fprintf(w, "%s · %s · Linux %s · %s\n", e.Date, e.CPU, e.Kernel, e.Go)
	if e.Mosquitto != "" {
		fmt.Fprintf(w, "· %s", e.Mosquitto)
	}
	if e.Piot != "" {
		fmt.Fprintf(w, " · piot %s", e.Piot)
	}
	fmt.Fprintf(w, "\n· data on %s; write+fsync of 256 bytes: p50 %s ms, p99 %s ms\n\n", e.DataFS, msFmt(e.FsyncP50MS), msFmt(e.FsyncP99MS))

	fmt.Fprintln(w, "| case | mosquitto | appliance | ratio appliance/mosquitto |")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	for _, r := range rep.Rows {
		ratio := "–"
		if r.Ratio != nil {
			ratio = fmt.Sprintf("%.2f", *r.Ratio)
		}
		fmt.Fprintf(w, "| %s [%s] | %s | %s | %s |\n", r.Case, r.Unit, r.mText, r.aText, ratio)
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(w, "\n**Targets**")
		fmt.Fprintln(w)
		for _, t := range rep.Targets {
			met := "NOT MET"
			if t.Met {
				met = "met"
			}
			fmt.Fprintf(w, "- %s: **%s** — %s\n", t.Target, met, t.Detail)
		}
	}

	fmt.Fprintln(w, "\n**Details** (per run)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| broker | case | messages | time s | msg/s | delivered | errors | connect ms | broker cores | client cores | other cores | broker busy after s |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, name := range []string{"mosquitto", "appliance"} {
		br := rep.Results[name]
		if br == nil {
			continue
		}
		fmt.Fprintf(w, "| %s | first MQTT connect after start (appliance: bcrypt check of the org password, then cached) | | | | | | %.0f | | | | |\n", name, br.FirstConnectMS)
		if br.ThingsSetupS > 0 && name == "appliance" {
			fmt.Fprintf(w, "| %s | making the -things things (appliance: createThing, updateThing, updateThingSensorData over GraphQL) and one checked message each | | %.1f | | | | | | | | |\n", name, br.ThingsSetupS)
		}
		for _, r := range br.Throughput {
			things := ""
			if r.Things > 0 {
				things = " over " + group(int64(r.Things)) + " things"
			}
			fmt.Fprintf(w, "| %s | QoS %d, %d × %s%s | %s | %.2f | %s | %.1f %% | %d | %.0f | %.2f | %.2f | %.2f | %.1f |\n",
				name, r.QoS, r.Publishers, group(int64(r.PerPub)), things, group(r.Sent), r.ElapsedS, rateFmt(r.Rate), 100*r.Delivered,
				r.Errors, r.ConnectMS, r.ServerCPU, r.ClientCPU, r.OtherCPU, r.DrainS)
		}
		for _, r := range br.Latency {
			fmt.Fprintf(w, "| %s | %s msg/s latency, PUBACK p50/p90/p99/max %s/%s/%s/%s ms | %s | | %s | | %d | | %.2f | %.2f | %.2f | %.1f |\n",
				name, group(int64(r.Rate)), msFmt(r.Stored.P50), msFmt(r.Stored.P90), msFmt(r.Stored.P99), msFmt(r.Stored.Max),
				group(int64(r.Measured)), rateFmt(r.Achieved), r.Errors, r.ServerCPU, r.ClientCPU, r.OtherCPU, r.DrainS)
			if r.Visible.N > 0 || r.VisibleMiss > 0 {
				fmt.Fprintf(w, "| %s | visible in thing state p50/p90/p99/max %s/%s/%s/%s ms; %d samples, %d not seen in 3 s; poll every %s ms, poll RTT p50 %s ms p99 %s ms | | | | | | | | | | |\n",
					name, msFmt(r.Visible.P50), msFmt(r.Visible.P90), msFmt(r.Visible.P99), msFmt(r.Visible.Max), r.Visible.N, r.VisibleMiss,
					msFmt(r.PollEveryMS), msFmt(r.PollRTT.P50), msFmt(r.PollRTT.P99))
			}
			if len(r.Windows) > 0 {
				var ws []string
				for _, x := range r.Windows {
					ws = append(ws, fmt.Sprintf("%d s: %s/%s", x.FromS, msFmt(x.P50), msFmt(x.P99)))
				}
				fmt.Fprintf(w, "| %s | PUBACK p50/p99 ms per %s: %s | | | | | | | | | | |\n", name, window, strings.Join(ws, "; "))
			}
			if r.SendLateP99 > 1 {
				fmt.Fprintf(w, "| %s | publishes left up to %s ms (p99) behind schedule | | | | | | | | | | |\n", name, msFmt(r.SendLateP99))
			}
		}
	}
	fmt.Fprintln(w, "\n**Notes**")
	fmt.Fprintln(w)
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
}
