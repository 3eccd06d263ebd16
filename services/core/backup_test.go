package core

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/piot-appliance/piot/services/store"
	"go.mongodb.org/mongo-driver/bson"
)

func TestBackupIsForAdminsAndRestores(t *testing.T) {
	c, _, admin := newCore(t)
	ctx := context.Background()
	if _, err := c.CreateOrg(ctx, admin, "kept", ""); err != nil {
		t.Fatal(err)
	}
	th, err := c.CreateThing(ctx, admin, "T1", ThingSensor)
	if err != nil {
		t.Fatal(err)
	}
	c.UpdateThingState(th.ID, func(x *Thing) bool { x.Sensor.Value = "7"; return true })
	var buf bytes.Buffer
	member := Actor{UserID: admin.UserID, Email: "m@x.test"}
	if _, _, err := c.Backup(ctx, member, &buf, BackupHeader{Format: "fmt/1"}); CodeOf(err) != CodeForbidden || buf.Len() != 0 {
		t.Fatalf("non-admin: %v, %d bytes", err, buf.Len())
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	colls, docs, err := c.Backup(ctx, admin, &buf, BackupHeader{Format: "fmt/1", Version: "v9", Created: created})
	if err != nil || colls < 3 || docs < 3 {
		t.Fatalf("backup: %d collections, %d documents, %v", colls, docs, err)
	}
	first, _, _ := strings.Cut(buf.String(), "\n")
	var header bson.D
	if err := bson.UnmarshalExtJSON([]byte(first), true, &header); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range header {
		keys = append(keys, e.Key)
	}
	if strings.Join(keys, ",") != "format,version,created,collections" ||
		header[0].Value != "fmt/1" || header[1].Value != "v9" || header[2].Value != "2026-01-02T02:04:05Z" {
		t.Fatalf("header %v", header)
	}

	st, err := store.Open(ctx, store.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	if n, err := st.Restore(ctx, &buf, "fmt/1"); err != nil || n != docs {
		t.Fatalf("restore: %d of %d documents, %v", n, docs, err)
	}
	restored, err := New(ctx, st, Config{BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := restored.OrgIDByName("kept"); !ok {
		t.Error("org lost")
	}
	if got, ok := restored.ThingByName("T1"); !ok || got.ID != th.ID || got.Type != ThingSensor || got.Sensor.Value != "7" {
		t.Errorf("thing: %+v %v", got, ok)
	}

	// A backup from before the state pages has the state in the things'
	// documents; the pages left in the store must not override it.
	doc := thingDoc(&Thing{ID: th.ID, Name: "T1", Type: ThingSensor, Sensor: Sensor{Value: "old"}})
	line, err := bson.MarshalExtJSON(bson.D{{Key: "c", Value: store.CollThings}, {Key: "d", Value: doc}}, true, false)
	if err != nil {
		t.Fatal(err)
	}
	old := `{"format": "fmt/1", "collections": ["things"]}` + "\n" + string(line) + "\n"
	if _, err := st.Restore(ctx, strings.NewReader(old), "fmt/1"); err != nil {
		t.Fatal(err)
	}
	if restored, err = New(ctx, st, Config{BcryptCost: 4}); err != nil {
		t.Fatal(err)
	}
	if got, ok := restored.ThingByName("T1"); !ok || got.Sensor.Value != "old" {
		t.Errorf("thing of an old backup: %+v %v", got, ok)
	}
}
