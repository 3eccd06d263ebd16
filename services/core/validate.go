package core

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on names and text fields; documented in the README.
const (
	MaxNameLen        = 64
	MaxTextLen        = 4096
	MaxTopicLen       = 256
	MinPasswordLen    = 8
	MaxPasswordLen    = 72 // bcrypt ignores bytes beyond 72
	MaxEmailLen       = 254
	MaxLastSeenPeriod = 365 * 24 * 3600
)

// ValidName checks a name used as an MQTT topic level (org and thing names).
func ValidName(kind, name string) error {
	switch {
	case name == "":
		return errf(CodeBadInput, "%s name must not be empty", kind)
	case len(name) > MaxNameLen:
		return errf(CodeBadInput, "%s name is longer than %d bytes", kind, MaxNameLen)
	case !utf8.ValidString(name):
		return errf(CodeBadInput, "%s name is not valid UTF-8", kind)
	case strings.HasPrefix(name, "$"):
		return errf(CodeBadInput, "%s name must not start with '$'", kind)
	case strings.TrimSpace(name) != name:
		return errf(CodeBadInput, "%s name must not start or end with spaces", kind)
	}
	for _, r := range name {
		if r == '/' || r == '+' || r == '#' || unicode.IsControl(r) {
			return errf(CodeBadInput, "%s name must not contain '/', '+', '#' or control characters", kind)
		}
		if invisible(r) {
			return errf(CodeBadInput, "%s name must not contain invisible or direction-changing characters (U+%04X)", kind, r)
		}
	}
	return nil
}

// invisible reports characters that change how a name reads without
// showing themselves: bidi controls (U+202E turns "gnp.exe" around),
// zero-width characters, other format characters, line and paragraph
// separators, private use, and spaces other than the plain one. Two names
// that look alike on the console or in Grafana must not be two things.
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Co, unicode.Cs) ||
		unicode.IsSpace(r) && r != ' ' ||
		r == '\u115F' || r == '\u1160' || r == '\u3164' || r == '\uFFA0' // Hangul fillers
}

// normEmail validates an address and returns its canonical (lower-case)
// form, so logins are case-insensitive and uniqueness holds across case.
func normEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return "", errf(CodeBadInput, "email field is empty or not specified")
	}
	if len(email) > MaxEmailLen {
		return "", errf(CodeBadInput, "email field has wrong format")
	}
	// Single-label domains ("admin@localhost") are accepted: appliances
	// often live on a LAN without public DNS names.
	a, err := mail.ParseAddress(email)
	if err != nil || a.Name != "" || a.Address != email || strings.Count(email, "@") != 1 {
		return "", errf(CodeBadInput, "email field has wrong format")
	}
	if strings.IndexFunc(email, invisible) >= 0 {
		return "", errf(CodeBadInput, "email must not contain invisible or direction-changing characters")
	}
	return strings.ToLower(email), nil
}

func validPassword(pw string) error {
	switch {
	case pw == "":
		return errf(CodeBadInput, "password field is empty or not specified")
	case len(pw) < MinPasswordLen:
		return errf(CodeBadInput, "password must have at least %d characters", MinPasswordLen)
	case len(pw) > MaxPasswordLen:
		return errf(CodeBadInput, "password must have at most %d bytes", MaxPasswordLen)
	}
	return nil
}

// validTopic checks a topic relative to org/<org>/: publishable (no
// wildcards), no NUL, bounded.
func validTopic(field, topic string) error {
	switch {
	case len(topic) > MaxTopicLen:
		return errf(CodeBadInput, "%s is longer than %d bytes", field, MaxTopicLen)
	case !utf8.ValidString(topic):
		return errf(CodeBadInput, "%s is not valid UTF-8", field)
	case strings.ContainsAny(topic, "+#\x00"):
		return errf(CodeBadInput, "%s must not contain '+', '#' or NUL", field)
	case strings.HasPrefix(topic, "/"):
		return errf(CodeBadInput, "%s is relative to org/<org>/ and must not start with '/'", field)
	}
	return nil
}

func validText(field, s string) error {
	if len(s) > MaxTextLen {
		return errf(CodeBadInput, "%s is longer than %d bytes", field, MaxTextLen)
	}
	if !utf8.ValidString(s) {
		return errf(CodeBadInput, "%s is not valid UTF-8", field)
	}
	return nil
}

func validThingType(t string) error {
	switch t {
	case ThingDevice, ThingSensor, ThingSwitch:
		return nil
	}
	return errf(CodeBadInput, "unknown thing type: %s", t)
}
