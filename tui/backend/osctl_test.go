package backend

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/piot-appliance/piot/appliance/osctl"
	"github.com/piot-appliance/piot/services/core"
	"github.com/piot-appliance/piot/tui"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

// initSide answers as piot init does: it refuses a bad host name.
type initSide struct{ got osctl.Settings }

func (i *initSide) State() osctl.State {
	return osctl.State{Settings: osctl.Settings{Hostname: "piot", Network: "static", NetAddress: "10.0.0.5/24", NetDNS: []string{"10.0.0.1", "10.0.0.2"}, Timezone: "UTC"}}
}
func (i *initSide) Apply(_ context.Context, s osctl.Settings) error {
	if s.Hostname == "bad_name" {
		return osctl.BadInput{Err: errors.New(`hostname: "bad_name": only letters, digits, hyphens and dots`)}
	}
	i.got = s
	return nil
}
func (i *initSide) Do(osctl.Action) error { return nil }

func (i *initSide) ScheduleReboot(time.Time) error { return nil }

func TestOSSettingsThroughInit(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "init.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	side := &initSide{}
	go func() { _ = osctl.Serve(ln, side) }()
	sys := NewSystem(SystemConfig{DataDir: t.TempDir(), OS: osctl.New(sock)})
	admin := core.Actor{UserID: primitive.NewObjectID(), Email: "admin@x.test", Admin: true}
	ctx := context.Background()

	cur, err := sys.OSSettings(ctx, admin)
	if err != nil || cur.NetDNS != "10.0.0.1,10.0.0.2" || cur.Network != "static" {
		t.Fatalf("OSSettings: %+v %v", cur, err)
	}
	err = sys.SetOSSettings(ctx, admin, tui.OSSettings{Hostname: "barn", Network: "static", NetAddress: "10.0.0.9/24", NetDNS: " 10.0.0.1 , 10.0.0.3 ", NTPServers: "", Timezone: "Europe/Prague"})
	if err != nil {
		t.Fatal(err)
	}
	if side.got.Hostname != "barn" || len(side.got.NetDNS) != 2 || side.got.NetDNS[1] != "10.0.0.3" || len(side.got.NTPServers) != 0 {
		t.Fatalf("init got %+v", side.got)
	}
	err = sys.SetOSSettings(ctx, admin, tui.OSSettings{Hostname: "bad_name", Network: "dhcp", Timezone: "UTC"})
	if core.CodeOf(err) != core.CodeBadInput {
		t.Fatalf("bad host name: %v, want BAD_INPUT with init's reason", err)
	}
	member := core.Actor{UserID: primitive.NewObjectID(), Email: "m@x.test"}
	if err := sys.SetOSSettings(ctx, member, cur); core.CodeOf(err) != core.CodeForbidden {
		t.Fatalf("member: %v", err)
	}
}
