package names

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	good := []string{"farm", "Farm 2", "teplota-01", "ž", strings.Repeat("a", MaxLen)}
	for _, n := range good {
		if err := Valid("org", n); err != nil {
			t.Errorf("%q refused: %v", n, err)
		}
	}
	// The messages reach devices (400 answers) and admins (GraphQL
	// errors, the console) as they are.
	for _, c := range []struct{ name, msg string }{
		{"", "thing name must not be empty"},
		{strings.Repeat("a", MaxLen+1), "thing name is longer than 64 bytes"},
		{"a\xffb", "thing name is not valid UTF-8"},
		{"$SYS", "thing name must not start with '$'"},
		{" lead", "thing name must not start or end with spaces"},
		{"trail ", "thing name must not start or end with spaces"},
		{"a/b", "thing name must not contain '/', '+', '#' or control characters"},
		{"a+b", "thing name must not contain '/', '+', '#' or control characters"},
		{"a#", "thing name must not contain '/', '+', '#' or control characters"},
		{"a\x00b", "thing name must not contain '/', '+', '#' or control characters"},
		{"tab\there", "thing name must not contain '/', '+', '#' or control characters"},
		// Invisible and direction-changing characters (issue 11).
		{"boiler\u202egnp", "thing name must not contain invisible or direction-changing characters (U+202E)"},
		{"boi\u200bler", "thing name must not contain invisible or direction-changing characters (U+200B)"},
		{"\ufeffboiler", "thing name must not contain invisible or direction-changing characters (U+FEFF)"},
		{"boiler\u2066x\u2069", "thing name must not contain invisible or direction-changing characters (U+2066)"},
		{"non\u00a0breaking", "thing name must not contain invisible or direction-changing characters (U+00A0)"},
		{"a\u2028b", "thing name must not contain invisible or direction-changing characters (U+2028)"},
		{"a\u200db", "thing name must not contain invisible or direction-changing characters (U+200D)"},
		{"a\u3164b", "thing name must not contain invisible or direction-changing characters (U+3164)"},
		{"a\ue000b", "thing name must not contain invisible or direction-changing characters (U+E000)"},
	} {
		if err := Valid("thing", c.name); err == nil || err.Error() != c.msg {
			t.Errorf("%q: %v, want %q", c.name, err, c.msg)
		}
	}
}

func TestInvisibleLetsPlainTextThrough(t *testing.T) {
	for _, r := range "az AZ09-_.:ž€日" {
		if Invisible(r) {
			t.Errorf("%q (U+%04X) taken for invisible", r, r)
		}
	}
}
