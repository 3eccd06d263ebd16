package vdgps

import (
	"os"
	"testing"
)

// fixture is a real tracker's upload (package upload decodes it in its
// own tests).
const fixture = "testdata/vdgps-capture-69-fixes.bin"

func readFixture(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(fixture)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
