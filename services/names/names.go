// Package names holds the rules for the names that become MQTT topic
// levels (organizations and things) and for the MQTT username of a
// device's own credentials. It imports nothing of the appliance: core
// applies the rules to what admins and devices register, the edge
// adapter (which runs without core) to what devices send it, and both
// must refuse the same names with the same words.
package names

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLen bounds a name, in bytes.
const MaxLen = 64

// ThingUsernamePrefix starts the MQTT username of a device's own
// credentials, "thing:<thing name>"; org usernames cannot contain ':'.
const ThingUsernamePrefix = "thing:"

// Valid checks a name used as an MQTT topic level; kind ("thing",
// "organization") starts the error, whose text is fit to show to whoever
// sent the name.
func Valid(kind, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s name must not be empty", kind)
	case len(name) > MaxLen:
		return fmt.Errorf("%s name is longer than %d bytes", kind, MaxLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%s name is not valid UTF-8", kind)
	case strings.HasPrefix(name, "$"):
		return fmt.Errorf("%s name must not start with '$'", kind)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("%s name must not start or end with spaces", kind)
	}
	for _, r := range name {
		if r == '/' || r == '+' || r == '#' || unicode.IsControl(r) {
			return fmt.Errorf("%s name must not contain '/', '+', '#' or control characters", kind)
		}
		if Invisible(r) {
			return fmt.Errorf("%s name must not contain invisible or direction-changing characters (U+%04X)", kind, r)
		}
	}
	return nil
}

// Invisible reports characters that change how a name reads without
// showing themselves: bidi controls (U+202E turns "gnp.exe" around),
// zero-width characters, other format characters, line and paragraph
// separators, private use, and spaces other than the plain one. Two names
// that look alike on the console or in Grafana must not be two things.
func Invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Co, unicode.Cs) ||
		unicode.IsSpace(r) && r != ' ' ||
		r == '\u115F' || r == '\u1160' || r == '\u3164' || r == '\uFFA0' // Hangul fillers
}
