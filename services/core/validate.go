package core

import (
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/piot-appliance/piot/services/names"
)

// Limits on names and text fields; documented in the README.
const (
	MaxNameLen        = names.MaxLen
	MaxTextLen        = 4096
	MaxTopicLen       = 256
	MinPasswordLen    = 8
	MaxPasswordLen    = 72 // bcrypt ignores bytes beyond 72
	MaxEmailLen       = 254
	MaxLastSeenPeriod = 365 * 24 * 3600
)

// ValidName checks a name used as an MQTT topic level (org and thing
// names); the rules are package names', which the edge adapter applies
// without core.
func ValidName(kind, name string) error {
	if err := names.Valid(kind, name); err != nil {
		return &Error{Code: CodeBadInput, Msg: err.Error()}
	}
	return nil
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
	if strings.IndexFunc(email, names.Invisible) >= 0 {
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
	if strings.HasPrefix(topic, "/") {
		return errf(CodeBadInput, "%s is relative to org/<org>/ and must not start with '/'", field)
	}
	return validTopicName(field, topic)
}

// validTopicName checks a topic name: publishable (no wildcards), no
// NUL, bounded.
func validTopicName(field, topic string) error {
	switch {
	case len(topic) > MaxTopicLen:
		return errf(CodeBadInput, "%s is longer than %d bytes", field, MaxTopicLen)
	case !utf8.ValidString(topic):
		return errf(CodeBadInput, "%s is not valid UTF-8", field)
	case strings.ContainsAny(topic, "+#\x00"):
		return errf(CodeBadInput, "%s must not contain '+', '#' or NUL", field)
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
