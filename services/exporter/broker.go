package exporter

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/piot-appliance/piot/services/broker"
)

// The broker's counters, from mochi's system info.
var (
	mqttClientsConnectedDesc = newDesc("mqtt", "clients_connected", "MQTT clients connected now.")
	mqttSessionsDesc         = newDesc("mqtt", "sessions", "MQTT sessions: connected clients plus disconnected persistent sessions.")
	mqttClientsMaxDesc       = newDesc("mqtt", "clients_connected_max", "Most MQTT clients connected at once since the broker started.")
	mqttSubscriptionsDesc    = newDesc("mqtt", "subscriptions", "MQTT subscriptions now.")
	mqttRetainedDesc         = newDesc("mqtt", "retained_messages", "Retained MQTT messages now.")
	mqttInflightDesc         = newDesc("mqtt", "inflight_messages", "QoS 1/2 MQTT messages awaiting acknowledgement now.")
	mqttInflightDroppedDesc  = newDesc("mqtt", "inflight_messages_dropped_total", "In-flight MQTT messages dropped (client gone or queue full).")
	mqttMessagesRecvDesc     = newDesc("mqtt", "messages_received_total", "PUBLISH messages received by the broker.")
	mqttMessagesSentDesc     = newDesc("mqtt", "messages_sent_total", "PUBLISH messages sent by the broker.")
	mqttMessagesDroppedDesc  = newDesc("mqtt", "messages_dropped_total", "PUBLISH messages the broker dropped instead of delivering.")
	mqttPacketsRecvDesc      = newDesc("mqtt", "packets_received_total", "MQTT packets received.")
	mqttPacketsSentDesc      = newDesc("mqtt", "packets_sent_total", "MQTT packets sent.")
	mqttBytesRecvDesc        = newDesc("mqtt", "bytes_received_total", "Bytes received by the MQTT listeners.")
	mqttBytesSentDesc        = newDesc("mqtt", "bytes_sent_total", "Bytes sent by the MQTT listeners.")
	mqttUptimeDesc           = newDesc("mqtt", "uptime_seconds", "Seconds since the broker started.")
	mqttSlowClientsDesc      = newDesc("mqtt", "slow_clients_disconnected_total", "MQTT clients disconnected because they did not read and their outbound queue overflowed.")
	mqttPacedDesc            = newDesc("mqtt", "publishes_paced_total", "Publishes after which the publisher waited for a subscriber whose queue of QoS 0 deliveries was a quarter full.")
	mqttPaceWaitDesc         = newDesc("mqtt", "pace_wait_seconds_total", "Time publishers waited for subscribers whose queue of QoS 0 deliveries was a quarter full.")

	// The broker policy's own counters.
	mqttAuthDesc = newDesc("mqtt", "auth_total",
		"MQTT CONNECT outcomes: ok, bad_credentials, not_authorized (anonymous or will topic denied), unavailable (store down), server_busy (client limit), rate_limited (too many failed logins from the address).",
		"result")
	mqttACLDesc = newDesc("mqtt", "acl_checks_total",
		"ACL decisions about MQTT clients: read (subscribe, delivery) or write (publish), allowed or denied.",
		"access", "result")
	mqttPublishesRecvDesc = newDesc("mqtt", "publishes_received_total",
		"PUBLISH packets from MQTT clients that passed the ACL, by QoS.", "qos")
)

// brokerCollector exports the piot_mqtt_* metrics.
type brokerCollector struct{ stats func() broker.Stats }

func (c brokerCollector) update(ch chan<- prometheus.Metric) error {
	st := c.stats()
	s := sender{ch: ch}
	s.gauge(mqttClientsConnectedDesc, float64(st.ClientsConnected))
	s.gauge(mqttSessionsDesc, float64(st.ClientsTotal))
	s.gauge(mqttClientsMaxDesc, float64(st.ClientsMaximum))
	s.gauge(mqttSubscriptionsDesc, float64(st.Subscriptions))
	s.gauge(mqttRetainedDesc, float64(st.Retained))
	s.gauge(mqttInflightDesc, float64(st.Inflight))
	s.counter(mqttInflightDroppedDesc, float64(st.InflightDropped))
	s.counter(mqttMessagesRecvDesc, float64(st.MessagesReceived))
	s.counter(mqttMessagesSentDesc, float64(st.MessagesSent))
	s.counter(mqttMessagesDroppedDesc, float64(st.MessagesDropped))
	s.counter(mqttPacketsRecvDesc, float64(st.PacketsReceived))
	s.counter(mqttPacketsSentDesc, float64(st.PacketsSent))
	s.counter(mqttBytesRecvDesc, float64(st.BytesReceived))
	s.counter(mqttBytesSentDesc, float64(st.BytesSent))
	s.gauge(mqttUptimeDesc, float64(st.Uptime))
	s.counter(mqttSlowClientsDesc, float64(st.SlowClients))
	s.counter(mqttPacedDesc, float64(st.PacedPublishes))
	s.counter(mqttPaceWaitDesc, st.PaceWait.Seconds())
	// Fixed label sets, every series present from the first scrape.
	for _, r := range broker.AuthResultNames {
		s.counter(mqttAuthDesc, float64(st.AuthResults[r]), r)
	}
	for _, access := range []string{broker.ACLRead, broker.ACLWrite} {
		for _, result := range []string{broker.ACLAllow, broker.ACLDeny} {
			s.counter(mqttACLDesc, float64(st.ACLResults[[2]string{access, result}]), access, result)
		}
	}
	for q, n := range st.PublishesReceived {
		s.counter(mqttPublishesRecvDesc, float64(n), strconv.Itoa(q))
	}
	return s.err
}
