package tui

import (
	"fmt"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/piot-appliance/piot/services/core"
)

// A device's own secrets on the Things screen: the AES-128 key of the
// PIOT protocol, which nobody can read back, and its own MQTT login,
// whose password is shown once.

var (
	keyAESKey     = key.NewBinding(key.WithKeys("K"), key.WithHelp("K", "AES key"))
	keyDeviceMQTT = key.NewBinding(key.WithKeys("M"), key.WithHelp("M", "device MQTT login"))
)

func isDevice(t core.Thing) bool { return t.Type == "device" }

// deviceSecretKeys are the keys of a device's detail.
func deviceSecretKeys(t core.Thing, admin bool) []key.Binding {
	if !isDevice(t) {
		return nil
	}
	if admin {
		return []key.Binding{keyAESKey, keyDeviceMQTT}
	}
	return []key.Binding{keyAESKey}
}

// deviceSecretsKV says whether the device has each secret, never the
// secret.
func deviceSecretsKV(t core.Thing) [][2]string {
	if !isDevice(t) {
		return nil
	}
	aes := "none: packets are checked with the org's key"
	if t.AESKey != "" {
		aes = "set (not shown)"
	}
	login := "none: it uses the org's"
	if t.MQTTPassword != "" {
		login = core.ThingUsernamePrefix + t.Name
	}
	return [][2]string{{"AES key", aes}, {"own MQTT login", login}}
}

// secretKey handles the keys of a device's secrets; ok is false for other
// keys.
func (s *thingsScreen) secretKey(k tea.KeyPressMsg, t core.Thing) (tea.Cmd, bool) {
	e := s.env
	switch {
	case !isDevice(t):
		return nil, false
	case key.Matches(k, keyAESKey):
		f := newForm("AES key of "+t.Name).
			secret("key", "New key", "AES-128 key", "key").
			boolean("clear", "Clear the key", false)
		f.note = "16 characters (AES-128); the device must use the same. Not shown again."
		if t.AESKey != "" {
			f.note = "A key is set (not shown); a new one replaces it. 16 characters (AES-128)."
		}
		id := t.ID
		return s.ov.open(f, func(a core.Actor, f *form) (string, error) {
			k, clear := f.value("key"), f.value("clear") == "yes"
			switch {
			case k != "" && clear:
				return "", core.NewError(core.CodeBadInput, "AES-128 key: type a new one or clear it, not both")
			case k == "" && !clear:
				return "", core.NewError(core.CodeBadInput, "AES-128 key: type 16 characters, or choose to clear it")
			}
			n, err := e.core.SetThingAESKey(e.ctx, a, id, k)
			if err != nil {
				return "", err
			}
			if clear {
				return "cleared the AES key of " + n.Name, nil
			}
			return "set the AES key of " + n.Name, nil
		}), true
	case key.Matches(k, keyDeviceMQTT):
		if err := core.AuthorizeAdmin(e.actor, core.ActSetThingMQTT); err != nil {
			return e.refuse(err), true
		}
		title := "Give " + t.Name + " its own MQTT login"
		if t.MQTTPassword != "" {
			title = "Rotate the MQTT password of " + t.Name
		}
		f := newForm(title)
		f.note = fmt.Sprintf("User %s%s reaches only org/<org>/%s/…; a new password is shown once.", core.ThingUsernamePrefix, t.Name, t.Name)
		id := t.ID
		return s.ov.openReveal(f, func(a core.Actor, _ *form) (*reveal, error) {
			cr, err := e.core.SetThingMQTTCredentials(e.ctx, a, id)
			if err != nil {
				return nil, err
			}
			return &reveal{
				title:  "MQTT login of " + t.Name,
				lines:  []string{"username  " + cr.Username, "password  " + cr.Password},
				secret: cr.Password,
			}, nil
		}), true
	}
	return nil, false
}
