package monitor

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// WebhookPayload is the JSON body POSTed to an org's webhook.
type WebhookPayload struct {
	Event   string `json:"event"` // alarm_raised or alarm_cleared
	Org     string `json:"org"`
	Thing   string `json:"thing"`
	ThingID string `json:"thing_id"`
	AlarmID string `json:"alarm_id"`
	At      string `json:"at"` // RFC 3339, UTC
}

// Headers of a webhook request.
const (
	HeaderSignature = "X-PIOT-Signature" // sha256=<hex HMAC-SHA256 of the body>
	HeaderDelivery  = "X-PIOT-Delivery"  // <alarm_id>:<event>, the same on every retry
)

// Sign returns the X-PIOT-Signature value of body.
func Sign(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func (n *notifier) httpClient() *http.Client {
	return &http.Client{
		Timeout: n.m.cfg.WebhookTimeout,
		// A redirect is an answer, not a new place to POST the alarm to.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (n *notifier) sendWebhook(ctx context.Context, x notification) {
	m := n.m
	targets := m.core.NotificationTargets(x.alarm.OrgID)
	if targets.WebhookURL == "" {
		return
	}
	org := targets.OrgName
	if org == "" {
		org = x.alarm.OrgName
	}
	body, _ := json.Marshal(WebhookPayload{
		Event: x.event, Org: org, Thing: x.thing(), ThingID: x.alarm.ThingID.Hex(),
		AlarmID: x.alarm.ID, At: x.at.UTC().Format(time.RFC3339),
	})
	client := n.httpClient()
	err := retry(ctx, n.hookTry, func() { m.stats.webhooksRetried.Add(1) }, func(int) (time.Duration, error) {
		return post(ctx, client, targets.WebhookURL, targets.WebhookSecret, x.alarm.ID+":"+x.event, body)
	})
	if err != nil {
		m.stats.webhooksFailed.Add(1)
		m.log.Error("alarm webhook failed", "event", x.event, "alarm", x.alarm.ID, "org", org, "err", err)
		return
	}
	m.stats.webhooksSent.Add(1)
	m.log.Info("alarm webhook delivered", "event", x.event, "alarm", x.alarm.ID, "org", org)
}

// post makes one attempt. Network errors, 5xx and 429 may be retried
// (after Retry-After if given); any other non-2xx answer is final.
func post(ctx context.Context, client *http.Client, url, secret, delivery string, body []byte) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, permanent{err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "piot-monitor")
	req.Header.Set(HeaderDelivery, delivery)
	if secret != "" {
		req.Header.Set(HeaderSignature, Sign(body, secret))
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return 0, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("webhook answered %s", resp.Status)
	default:
		return 0, permanent{errors.New("webhook answered " + resp.Status)}
	}
}

func retryAfter(v string) time.Duration {
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}
