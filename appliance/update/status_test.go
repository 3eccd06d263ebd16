package update

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReadStatus(t *testing.T) {
	s := Slots{Dir: t.TempDir()}
	outcome := filepath.Join(t.TempDir(), "update.json")
	if err := os.WriteFile(filepath.Join(s.Dir, "piot-a.efi"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := ReadStatus("v1.0.0", SlotA, s, outcome)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != "v1.0.0" || st.Slot != SlotA || st.OtherSlotVersion != "" || st.OtherSlotState != "" || st.LastUpdate != nil {
		t.Errorf("fresh appliance: %+v", st)
	}

	at := time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC)
	want := Outcome{Result: ResultRolledBack, Reason: "not ready within 5m0s", Version: "v1.1.0", Slot: SlotB, At: at}
	if err := SaveOutcome(outcome, want); err != nil {
		t.Fatal(err)
	}
	uki := filepath.Join("..", "..", "image", "out", "piot-a.efi")
	data, err := os.ReadFile(uki)
	if err != nil {
		t.Skip("no image built (make image)")
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "piot-b+0-3.efi"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err = ReadStatus("v1.0.0", SlotA, s, outcome)
	if err != nil {
		t.Fatal(err)
	}
	if st.LastUpdate == nil || *st.LastUpdate != want {
		t.Errorf("last update %+v, want %+v", st.LastUpdate, want)
	}
	if st.OtherSlotState != StateBad || st.OtherSlotVersion == "" {
		t.Errorf("other slot %q %q", st.OtherSlotState, st.OtherSlotVersion)
	}
}
