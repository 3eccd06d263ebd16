package ingest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// BenchmarkProcess is the rule engine alone: one sensor value with a
// gjson path, applied to a thing in core's memory.
func BenchmarkProcess(b *testing.B) {
	e := newEnv(b)
	ing := e.start(Config{}, nil)
	e.thing(thingSpec{name: "T1", typ: "sensor", sensor: &core.SensorUpdate{MeasurementTopic: ptr("value"), MeasurementValue: ptr("DS18B20.Temperature")}})
	payload := []byte(`{"Time":"2026-11-05T10:00:00","DS18B20":{"Id":"0316A279D6FF","Temperature":23.4},"TempUnit":"C"}`)
	at := time.Now()
	b.ResetTimer()
	for b.Loop() {
		if r := ing.Process("org/acme/T1/value", payload, at); len(r.Points) != 1 {
			b.Fatalf("%+v", r)
		}
	}
}

// BenchmarkHookQoS1 is what the broker sees: publishers calling OnPublish
// for QoS 1 sensor values on 10 things, each waiting for its record to be
// durable. History and state are written in the background; the reported
// history lag is how far behind the history writer was at the end.
func BenchmarkHookQoS1(b *testing.B) {
	for _, pubs := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("publishers=%d", pubs), func(b *testing.B) {
			e := newEnv(b)
			ing := e.start(Config{}, nil)
			for k := 0; k < 10; k++ {
				e.thing(thingSpec{name: fmt.Sprintf("T%d", k), typ: "sensor", sensor: &core.SensorUpdate{MeasurementTopic: ptr("value")}})
			}
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N/pubs + 1
			for p := 0; p < pubs; p++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := 0; k < per; k++ {
						publish(b, ing, fmt.Sprintf("org/acme/T%d/value", (p+k)%10), "21.5", 1)
					}
				}()
			}
			wg.Wait()
			elapsed := b.Elapsed()
			b.StopTimer()
			queued := ing.Stats()[Key{RuleHistory, PointsQueued}]
			stored := ing.Stats()[Key{RuleHistory, PointsStored}]
			b.ReportMetric(float64(per*pubs)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(queued-stored), "history_lag_points")
			start := time.Now()
			if err := ing.Stop(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(time.Since(start).Milliseconds()), "drain_ms")
		})
	}
}
