package initd

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A disk image laid out as image/build.sh does, written to a larger disk:
// the data partition grows to the end, the GPT stays valid for sfdisk,
// and a second run changes nothing.
func TestGPTGrowLast(t *testing.T) {
	sfdisk, err := exec.LookPath("sfdisk")
	if err != nil {
		if os.Getenv("PIOT_REQUIRE_MOSQUITTO") != "" {
			t.Fatal("sfdisk not installed (image/build.sh installs fdisk)")
		}
		t.Skip("sfdisk not installed")
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	layout := "label: gpt\nstart=1MiB, size=16MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"PIOT-ESP\"\nstart=17MiB, size=32MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"piot-data\"\n"
	cmd := exec.Command(sfdisk, "-q", img)
	cmd.Stdin = strings.NewReader(layout)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v %s", err, out)
	}
	grow := func(size int64, pno int) (uint64, uint64, bool) {
		t.Helper()
		f, err := os.OpenFile(img, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		first, last, changed, err := gptGrowLast(f, size, 512, pno)
		if err != nil {
			t.Fatal(err)
		}
		return first, last, changed
	}
	// Not grown: the disk has not grown enough.
	if _, _, changed := grow(64<<20, 2); changed {
		t.Fatal("grew without room")
	}
	if err := os.Truncate(img, 256<<20); err != nil {
		t.Fatal(err)
	}
	// The ESP is not the last partition: left alone.
	if _, _, changed := grow(256<<20, 1); changed {
		t.Fatal("grew a partition that is not the last")
	}
	first, last, changed := grow(256<<20, 2)
	if !changed || first != 17<<11 {
		t.Fatalf("grow: first %d last %d changed %v", first, last, changed)
	}
	if out, err := exec.Command(sfdisk, "--verify", img).CombinedOutput(); err != nil || !strings.Contains(string(out), "No errors detected") || strings.Contains(string(out), "not at the end") {
		t.Fatalf("sfdisk --verify after growing: %v\n%s", err, out)
	}
	out, err := exec.Command(sfdisk, "--json", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	var pt struct {
		PartitionTable struct {
			LastLBA    uint64 `json:"lastlba"`
			Partitions []struct {
				Start, Size uint64
				Name        string
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &pt); err != nil {
		t.Fatal(err)
	}
	p := pt.PartitionTable.Partitions[1]
	if p.Name != "piot-data" || p.Start+p.Size-1 != last || p.Size < 200<<11 {
		t.Fatalf("after growing: %+v (want it to end at %d)\n%s", p, last, out)
	}
	if pt.PartitionTable.LastLBA < last || pt.PartitionTable.LastLBA-last > 2048+33 {
		t.Fatalf("last usable LBA %d, partition ends at %d", pt.PartitionTable.LastLBA, last)
	}
	if _, _, changed := grow(256<<20, 2); changed {
		t.Fatal("a second run grew again")
	}
}
