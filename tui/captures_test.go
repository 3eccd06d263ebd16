package tui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/piot-appliance/piot/services/core"
)

// TestCaptures renders the Logs, History, Audit, Alarms and Live screens,
// the Clients view, the linked things' detail and the restore-pending banner
// at 80×24 and 120×35; every frame must fit. With PIOT_WRITE_CAPTURES=1 it writes
// them to docs/console/<screen>-<size>.txt, the captures the README links.
func TestCaptures(t *testing.T) {
	write := os.Getenv("PIOT_WRITE_CAPTURES") == "1"
	dir := filepath.Join("..", "docs", "console")
	for _, size := range [][2]int{{80, 24}, {120, 35}} {
		w, h := size[0], size[1]
		capture := func(hs *harness, name string, want ...string) {
			t.Helper()
			s := hs.waitFor(want...)
			checkFits(t, s, w, h)
			if !write {
				return
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, name+"-"+sizeName(w, h)+".txt")
			if err := os.WriteFile(file, []byte(s+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}

		wd, _, _ := historyWorld(t)
		sys := &fakeSystem{}
		hs := newHarness(t, Deps{Core: wd.core, System: sys, History: fakeHistory{core: wd.core}}, wd.admin, w, h)
		hs.key("8")
		capture(hs, "logs", "following")
		hs.key("/")
		hs.typeText("level=ERROR")
		hs.key("enter", "n")
		sys.logMore(4)
		hs.refresh()
		capture(hs, "logs-search-paused", "paused, 4 new")
		hs.key("G", "enter")
		capture(hs, "logs-full-line", "esc or enter closes", "END")
		hs.key("esc")

		hs.key("9")
		capture(hs, "history-things", "History — pick a thing", "truck")
		hs.key("enter")
		capture(hs, "history-chart", "[24 h]", "┤")
		hs.key("right")
		capture(hs, "history-chart-7d", "[7 d]", "┤")
		hs.key("v")
		capture(hs, "history-steps", "Step from")
		hs.key("v")
		capture(hs, "history-readings", "Value")
		hs.key("v", "s")
		capture(hs, "history-battery", "[battery]", "┤")
		hs.key("esc", "/")
		hs.typeText("truck")
		hs.key("enter", "enter")
		capture(hs, "history-track", "locations", "lat")

		api := core.WithSource(context.Background(), core.Source{Via: core.ViaAPI, Addr: "192.0.2.10"})
		if _, err := wd.core.CreateOrg(api, wd.admin, "shop", "the shop's sensors"); err != nil {
			t.Fatal(err)
		}
		hs.key("esc", "0")
		capture(hs, "audit", "Audit trail", "bootstrap", "org shop")
		hs.key("/")
		hs.typeText("truck")
		hs.key("enter", "enter")
		capture(hs, "audit-entry", "esc or enter closes", "truck")
		hs.key("esc")

		member := newHarness(t, Deps{Core: wd.core, System: sys}, wd.member, w, h)
		member.key("8")
		capture(member, "logs-member", "only admins")

		wc, fc := clientsWorld(t)
		cl := newHarness(t, Deps{Core: wc.core, Live: &fakeFeed{}, Clients: fc}, wc.admin, w, h)
		cl.key("5", "C")
		capture(cl, "clients", "[Connected (4)]", "boiler-1")
		cl.key("enter")
		capture(cl, "clients-detail", "subscriptions (2)")
		cl.key("esc", "s")
		capture(cl, "clients-sessions", "[Sessions (1)]", "logger")
		cl.key("s")
		capture(cl, "clients-retained", "[Retained (2)]", "org/acme/boiler/config")
		cl.key("d")
		capture(cl, "clients-retained-delete", "[y/N]")
		cl.key("n")
		mc := newHarness(t, Deps{Core: wc.core, Live: &fakeFeed{}, Clients: fc}, wc.member, w, h)
		mc.key("5", "C")
		capture(mc, "clients-member", "[Connected (2)]", "boiler-1")

		wn, ts := navWorld(t)
		nav := newHarness(t, Deps{Core: wn.core, Alarms: scopedAlarms{core: wn.core, things: []core.Thing{ts["temp"], ts["pump"]}}}, wn.member, w, h)
		nav.key("6")
		capture(nav, "alarms-member", "Alarms(1)", "Active (1)", "temp")
		nav.key("enter")
		capture(nav, "thing-sensor-links", "temp — sensor", "parent device:[gateway]")
		nav.key("enter")
		capture(nav, "thing-device-links", "gateway — device", "sensors:[humid] temp")

		bk := &fakeBackups{}
		bk.schedule(false)
		rs := newHarness(t, Deps{Core: wd.core, System: sys, Backups: bk}, wd.admin, w, h)
		rs.key("7")
		capture(rs, "restore-pending", "RESTORE PENDING", "Listeners")
		rs.key("x")
		capture(rs, "restore-pending-cancel", "Cancel the pending restore?")
		captureLive(t, w, h, capture)
		objectCaptures(t, w, h, capture)
	}
}

func sizeName(w, h int) string { return fmt.Sprintf("%dx%d", w, h) }
