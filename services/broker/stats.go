package broker

import (
	"sync/atomic"

	"github.com/mochi-mqtt/server/v2/system"
)

// Stats is a snapshot of the broker's counters, for the console and the
// exporter. Counters only grow; gauges are current values.
type Stats struct {
	ClientsConnected int64 // gauge
	ClientsTotal     int64 // gauge: connected plus disconnected persistent sessions
	ClientsMaximum   int64
	Subscriptions    int64 // gauge
	Retained         int64 // gauge
	Inflight         int64 // gauge
	InflightDropped  int64
	MessagesReceived int64
	MessagesSent     int64
	MessagesDropped  int64
	PacketsReceived  int64
	PacketsSent      int64
	BytesReceived    int64
	BytesSent        int64
	Uptime           int64 // seconds
}

// Stats reads mochi's system counters; zero before Start.
func (b *Broker) Stats() Stats {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if !b.started || b.server == nil {
		return Stats{}
	}
	return statsOf(b.server.Info)
}

func statsOf(i *system.Info) Stats {
	return Stats{
		ClientsConnected: atomic.LoadInt64(&i.ClientsConnected),
		ClientsTotal:     atomic.LoadInt64(&i.ClientsTotal),
		ClientsMaximum:   atomic.LoadInt64(&i.ClientsMaximum),
		Subscriptions:    atomic.LoadInt64(&i.Subscriptions),
		Retained:         atomic.LoadInt64(&i.Retained),
		Inflight:         atomic.LoadInt64(&i.Inflight),
		InflightDropped:  atomic.LoadInt64(&i.InflightDropped),
		MessagesReceived: atomic.LoadInt64(&i.MessagesReceived),
		MessagesSent:     atomic.LoadInt64(&i.MessagesSent),
		MessagesDropped:  atomic.LoadInt64(&i.MessagesDropped),
		PacketsReceived:  atomic.LoadInt64(&i.PacketsReceived),
		PacketsSent:      atomic.LoadInt64(&i.PacketsSent),
		BytesReceived:    atomic.LoadInt64(&i.BytesReceived),
		BytesSent:        atomic.LoadInt64(&i.BytesSent),
		Uptime:           atomic.LoadInt64(&i.Uptime),
	}
}
