package monitor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/piot-appliance/piot/services/core"
)

// EventTest is the event of a test request an admin sends to an org's
// webhook; receivers that only handle alarms should ignore it.
const EventTest = "webhook_test"

// TestWebhook sends one test request to the org's webhook now, signed as
// alarms are (X-PIOT-Signature with the org's secret), without retries,
// and reports whether the receiver accepted it (a 2xx answer). Core
// decides who may (ActTestWebhook). The body is a WebhookPayload with
// Event "webhook_test" and no thing.
func (m *Monitor) TestWebhook(ctx context.Context, a core.Actor, orgID core.ID) error {
	if err := core.AuthorizeAdmin(a, core.ActTestWebhook); err != nil {
		return err
	}
	if _, err := m.core.Org(a, orgID); err != nil {
		return err
	}
	targets := m.core.NotificationTargets(orgID)
	if targets.WebhookURL == "" {
		return core.NewError(core.CodeBadInput, "the organization has no webhook to test")
	}
	idb := make([]byte, 6)
	_, _ = rand.Read(idb)
	id := "test-" + hex.EncodeToString(idb)
	body, _ := json.Marshal(WebhookPayload{Event: EventTest, Org: targets.OrgName, AlarmID: id,
		At: m.now().UTC().Format(time.RFC3339)})
	if _, err := post(ctx, m.notifier.httpClient(), targets.WebhookURL, targets.WebhookSecret, id+":"+EventTest, body); err != nil {
		m.log.Info("test webhook failed", "org", targets.OrgName, "err", err)
		return core.NewError(core.CodeUnavailable, "the webhook did not accept the test request: "+err.Error())
	}
	m.log.Info("test webhook delivered", "org", targets.OrgName)
	return nil
}
