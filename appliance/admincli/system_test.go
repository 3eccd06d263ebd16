package admincli

import (
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/appliance/update"
)

func TestParseRebootTime(t *testing.T) {
	now := time.Date(2026, 12, 6, 22, 30, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"now":                  {},
		"03:00":                time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC),
		"23:15":                time.Date(2026, 12, 6, 23, 15, 0, 0, time.UTC),
		"2026-12-24T03:00:00Z": time.Date(2026, 12, 24, 3, 0, 0, 0, time.UTC),
	} {
		got, err := parseRebootTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "soon", "25:00", "2026-12-24"} {
		if _, err := parseRebootTime(bad, now); err == nil || !strings.Contains(err.Error(), "HH:MM") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestPrintStatusSaysWhatRolledBack(t *testing.T) {
	at := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	var b strings.Builder
	printStatus(&b, update.Status{
		Version: "v1.2.0", Slot: update.SlotA, OtherSlotVersion: "v1.3.0", OtherSlotState: update.StateBad,
		LastUpdate: &update.Outcome{Result: update.ResultRolledBack, Version: "v1.3.0", Slot: update.SlotB, At: at,
			Reason: "slot b did not become ready in 3 boots", Detail: "piot: store: data format 3 is newer"},
		RebootAt: &at,
	})
	out := b.String()
	for _, want := range []string{"version:      v1.2.0", "other slot:   v1.3.0 (bad)", "last update:  rolled-back, version v1.3.0",
		"reason:     slot b did not become ready in 3 boots", "last words: piot: store: data format 3", "reboot at:"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	printStatus(&b, update.Status{Version: "dev"})
	if !strings.Contains(b.String(), "updates are off") || strings.Contains(b.String(), "other slot") {
		t.Errorf("status of a development run:\n%s", b.String())
	}
}
