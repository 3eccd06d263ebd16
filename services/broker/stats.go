package broker

import (
	"sync/atomic"
	"time"

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
	// SlowClients counts connections closed because their outbound queue
	// overflowed; their dropped QoS 0 deliveries are in MessagesDropped.
	SlowClients int64
	// PacedPublishes counts publishes after which the publisher waited
	// for a congested subscriber, PaceWait how long they waited in all.
	PacedPublishes int64
	PaceWait       time.Duration

	// The policy hook's counters. The maps are copies holding every key,
	// zero or not.
	AuthResults       map[string]int64    // CONNECT outcomes, keyed by AuthResultNames
	ACLResults        map[[2]string]int64 // ACL checks of clients, keyed by {ACLRead|ACLWrite, ACLAllow|ACLDeny}
	PublishesReceived [3]int64            // PUBLISH packets from clients that passed the ACL, by QoS
}

// Stats reads mochi's system counters; zero before Start.
func (b *Broker) Stats() Stats {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if !b.started || b.server == nil {
		var st Stats
		(&policyCounters{}).fill(&st)
		return st
	}
	st := statsOf(b.server.Info)
	st.SlowClients = b.slowClients.Load()
	st.PacedPublishes = b.policy.pacer.paced.Load()
	st.PaceWait = time.Duration(b.policy.pacer.waited.Load())
	st.MessagesDropped += b.queueDropped.Load()
	b.policy.counts.fill(&st)
	return st
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

// Outcomes of CONNECT authentication, the keys of Stats.AuthResults.
const (
	AuthOK             = "ok"
	AuthBadCredentials = "bad_credentials" // wrong password, unknown or malformed username
	AuthNotAuthorized  = "not_authorized"  // anonymous, or a will topic outside the ACL
	AuthUnavailable    = "unavailable"     // the store is down
	AuthServerBusy     = "server_busy"     // MaxClients reached (refused by mochi)
	AuthRateLimited    = "rate_limited"    // too many failed logins from the address
)

// AuthResultNames lists every key of Stats.AuthResults.
var AuthResultNames = []string{AuthOK, AuthBadCredentials, AuthNotAuthorized, AuthUnavailable, AuthServerBusy, AuthRateLimited}

// ACL check keys of Stats.ACLResults: {access, result}.
const (
	ACLRead  = "read"
	ACLWrite = "write"
	ACLAllow = "allow"
	ACLDeny  = "deny"
)

// policyCounters are the policy hook's counters; all atomic, so counting
// never blocks a connection or a delivery.
type policyCounters struct {
	auth      [6]atomic.Int64    // by index into AuthResultNames
	acl       [2][2]atomic.Int64 // [write][allow]
	publishes [3]atomic.Int64    // by QoS
}

func (c *policyCounters) countAuth(result string) {
	for i, name := range AuthResultNames {
		if name == result {
			c.auth[i].Add(1)
			return
		}
	}
}

func (c *policyCounters) countACL(write, allow bool) {
	c.acl[b2i(write)][b2i(allow)].Add(1)
}

func (c *policyCounters) countPublish(qos byte) {
	if int(qos) < len(c.publishes) {
		c.publishes[qos].Add(1)
	}
}

// fill copies the counters into a snapshot, every key present.
func (c *policyCounters) fill(st *Stats) {
	st.AuthResults = make(map[string]int64, len(AuthResultNames))
	for i, name := range AuthResultNames {
		st.AuthResults[name] = c.auth[i].Load()
	}
	st.ACLResults = make(map[[2]string]int64, 4)
	for w, access := range []string{ACLRead, ACLWrite} {
		for a, result := range []string{ACLDeny, ACLAllow} {
			st.ACLResults[[2]string{access, result}] = c.acl[w][a].Load()
		}
	}
	for q := range c.publishes {
		st.PublishesReceived[q] = c.publishes[q].Load()
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
