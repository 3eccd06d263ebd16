package exporter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/piot-appliance/piot/services/broker"
	"github.com/piot-appliance/piot/services/core"
)

func TestApplianceMetrics(t *testing.T) {
	f := newFixture(t)
	h := newExporter(t, fakeSources(f.core)).Handler(BearerAuthorizer(globalToken, nil))
	_, _, body := scrape(t, h, globalToken)
	mfs := parse(t, body)

	want := map[string][]string{
		"piot_build_info":                           {`{goversion="` + runtime.Version() + `",version="v1.2.3-test"} 1`},
		"piot_mqtt_clients_connected":               {`{} 3`},
		"piot_mqtt_sessions":                        {`{} 5`},
		"piot_mqtt_clients_connected_max":           {`{} 7`},
		"piot_mqtt_subscriptions":                   {`{} 11`},
		"piot_mqtt_retained_messages":               {`{} 2`},
		"piot_mqtt_inflight_messages":               {`{} 1`},
		"piot_mqtt_inflight_messages_dropped_total": {`{} 4`},
		"piot_mqtt_messages_received_total":         {`{} 100`},
		"piot_mqtt_messages_sent_total":             {`{} 90`},
		"piot_mqtt_messages_dropped_total":          {`{} 6`},
		"piot_mqtt_packets_received_total":          {`{} 130`},
		"piot_mqtt_packets_sent_total":              {`{} 120`},
		"piot_mqtt_bytes_received_total":            {`{} 4096`},
		"piot_mqtt_bytes_sent_total":                {`{} 2048`},
		"piot_mqtt_uptime_seconds":                  {`{} 60`},
		"piot_mqtt_auth_total": {
			`{result="bad_credentials"} 2`, `{result="not_authorized"} 0`, `{result="ok"} 9`,
			`{result="rate_limited"} 0`, `{result="server_busy"} 0`, `{result="unavailable"} 0`,
		},
		"piot_mqtt_acl_checks_total": {
			`{access="read",result="allow"} 0`, `{access="read",result="deny"} 1`,
			`{access="write",result="allow"} 50`, `{access="write",result="deny"} 0`,
		},
		"piot_mqtt_publishes_received_total": {`{qos="0"} 10`, `{qos="1"} 40`, `{qos="2"} 0`},
		"piot_ingest_messages_total": {
			`{result="accepted",rule="sensor"} 30`,
			`{result="ignored_no_match",rule="message"} 2`,
			`{result="processed",rule="message"} 40`,
			`{result="rejected_bad_json",rule="sensor"} 1`,
		},
		"piot_ingest_journal_records_total":            {`{result="appended"} 42`, `{result="failed"} 0`},
		"piot_ingest_history_points_queued_total":      {`{} 0`},
		"piot_ingest_history_points_stored_total":      {`{} 30`},
		"piot_ingest_history_write_errors_total":       {`{} 0`},
		"piot_ingest_history_partitions_dropped_total": {`{} 0`},
		"piot_ingest_state_things_flushed_total":       {`{} 12`},
		"piot_ingest_state_flush_errors_total":         {`{} 0`},
		"piot_ingest_pipeline_events_total":            {`{result="something_new",stage="history"} 1`},
		"piot_history_points_written_total":            {`{} 30`},
		"piot_history_points_dropped_total": {
			`{reason="duplicate"} 1`, `{reason="expired"} 3`, `{reason="invalid"} 4`, `{reason="thinned"} 2`,
		},
		"piot_history_bulk_writes_total":        {`{} 5`},
		"piot_history_cache_misses_total":       {`{} 6`},
		"piot_history_partitions_dropped_total": {`{} 7`},
		"piot_history_partitions":               {`{} 8`},
		"piot_history_settles_total":            {`{} 9`},
		"piot_history_buckets_compacted_total":  {`{} 10`},
		"piot_history_hot_collections":          {`{} 2`},
		"piot_history_size_bytes":               {`{} 1.048576e+06`},
		"piot_store_up":                         {`{} 1`},
		"piot_store_operation_errors_total":     {`{operation="find"} 2`},
		"piot_users":                            {`{} 1`},
		"piot_orgs":                             {`{} 3`},
		"piot_things":                           {`{} 6`},
		// The fixture's changes, counted by core's audit trail.
		"piot_audit_entries_total": {
			`{action="bootstrap"} 1`, `{action="createOrg"} 3`, `{action="createThing"} 7`,
			`{action="deleteThing"} 1`, `{action="updateThing"} 7`, `{action="updateThingSensorData"} 2`,
		},
		"piot_audit_write_failures_total":                {`{} 0`},
		"piot_update_slot_info":                          {`{other_slot_state="bad",other_slot_version="v1.3.0",slot="a"} 1`},
		"piot_update_last_result_info":                   {`{result="rolled-back",version="v1.3.0"} 1`},
		"piot_update_last_result_timestamp_seconds":      {`{} 1.765e+09`},
		"piot_update_reboot_scheduled_timestamp_seconds": {`{} 0`},
	}
	for fam, w := range want {
		if got := series(mfs[fam]); !slices.Equal(got, w) {
			t.Errorf("%s:\n got  %q\n want %q", fam, got, w)
		}
	}
	collectors := []string{"audit", "broker", "build_info", "history", "ingest", "objects", "store", "things", "update"}
	var succ []string
	for _, c := range collectors {
		succ = append(succ, `{collector="`+c+`"} 1`)
	}
	if got := series(mfs["piot_scrape_collector_success"]); !slices.Equal(got, succ) {
		t.Errorf("success: %q", got)
	}
	if got := mfs["piot_scrape_collector_duration_seconds"]; len(got.GetMetric()) != len(collectors) {
		t.Errorf("durations: %q", series(got))
	}
	for fam, want := range map[string]string{
		"piot_ingest_journal_commit_duration_seconds": "count=42 sum=0.5 le=0.001:30 le=0.01:40 le=0.1:41 le=+Inf:42",
		"piot_ingest_journal_commit_records":          "count=11 sum=42 le=1:5 le=2:8 le=4:10 le=+Inf:11",
		"piot_store_operation_duration_seconds":       "count=9 sum=0.125 le=0.001:5 le=0.01:8 le=+Inf:9",
	} {
		mf := mfs[fam]
		if mf.GetType().String() != "HISTOGRAM" || len(mf.GetMetric()) != 1 {
			t.Errorf("%s: %v", fam, mf)
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		got := fmt.Sprintf("count=%d sum=%g", h.GetSampleCount(), h.GetSampleSum())
		for _, b := range h.GetBucket() {
			got += fmt.Sprintf(" le=%g:%d", b.GetUpperBound(), b.GetCumulativeCount())
		}
		if got != want {
			t.Errorf("%s: %s, want %s", fam, got, want)
		}
	}
	if mfs["piot_store_ping_duration_seconds"] == nil {
		t.Error("no store ping duration")
	}
	// Counters are counters and end in _total; nothing else does.
	for n, mf := range mfs {
		isCounter := mf.GetType().String() == "COUNTER"
		if isCounter != strings.HasSuffix(n, "_total") {
			t.Errorf("%s is a %s", n, mf.GetType())
		}
	}
}

func TestFailingSources(t *testing.T) {
	src := Sources{
		Broker:    func() broker.Stats { panic("broker gone") },
		StorePing: func(ctx context.Context) error { return errors.New("down") },
	}
	h := newExporter(t, src).Handler(BearerAuthorizer(globalToken, nil))
	code, _, body := scrape(t, h, globalToken)
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	mfs := parse(t, body)
	// A panicking source fails its collector only; a store that does not
	// answer is a measurement.
	want := []string{`{collector="broker"} 0`, `{collector="build_info"} 1`, `{collector="store"} 1`}
	if got := series(mfs["piot_scrape_collector_success"]); !slices.Equal(got, want) {
		t.Errorf("success: %q", got)
	}
	if got := series(mfs["piot_store_up"]); !slices.Equal(got, []string{`{} 0`}) {
		t.Errorf("store up: %q", got)
	}
	// Sources not given have no metrics.
	for _, n := range names(mfs) {
		switch {
		case n == "piot_build_info", n == "piot_store_up", n == "piot_store_ping_duration_seconds",
			n == "piot_scrape_collector_success", n == "piot_scrape_collector_duration_seconds":
		case strings.HasPrefix(n, "go_"), strings.HasPrefix(n, "process_"):
		default:
			t.Errorf("unexpected family %s", n)
		}
	}
	// No org scope without core: empty, not an error.
	h = newExporter(t, src).Handler(func(*http.Request) (Scope, bool) { return Scope{OrgID: core.ID{1}}, true })
	if code, _, body := scrape(t, h, ""); code != 200 || body != "" {
		t.Errorf("org scope without core: %d %q", code, body)
	}
}

func TestConcurrentScrapesAreBounded(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	src := Sources{StorePing: func(ctx context.Context) error {
		once.Do(func() { close(entered) })
		<-release
		return nil
	}}
	e, err := New(src, Config{MaxConcurrentScrapes: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := e.Handler(BearerAuthorizer(globalToken, nil))
	done := make(chan int)
	go func() {
		code, _, _ := scrape(t, h, globalToken)
		done <- code
	}()
	<-entered
	if code, _, _ := scrape(t, h, globalToken); code != http.StatusServiceUnavailable {
		t.Errorf("second scrape: %d", code)
	}
	// Unauthorized requests are refused before they take a slot.
	if code, _, _ := scrape(t, h, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", code)
	}
	close(release)
	if code := <-done; code != http.StatusOK {
		t.Errorf("first scrape: %d", code)
	}
	if code, _, body := scrape(t, h, globalToken); code != http.StatusOK || !strings.Contains(body, `piot_scrape_collector_success{collector="store"} 1`) {
		t.Errorf("after: %d\n%s", code, body)
	}
}
