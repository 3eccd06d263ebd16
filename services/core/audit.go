package core

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/piot-appliance/piot/services/store"
)

// The audit trail: every change made through core, with who made it,
// when, what and from where. Core records it itself (audit, called by
// each operation once its change is stored), so no front end can forget;
// the changes made outside core under an admin action (restore, reboot,
// OS settings, alarm acknowledgements) are recorded by Record.

// AuditEntry is one recorded change. TS is Unix seconds. Target names the
// object changed (its kind and name or email) and never a secret:
// passwords, tokens and keys are recorded as having changed, not by value.
type AuditEntry struct {
	TS     int64
	Actor  string // the user's email, or ActorSystem
	Action string // the operation, named like the GraphQL mutation (createOrg)
	Target string
	Source string // api, console, web, cli, adapter; then the remote address
}

// ActorSystem is the actor of changes no user made: the first admin at
// start, auto-registered devices.
const ActorSystem = "system"

// Defaults of the audit trail's retention.
const (
	DefaultAuditRetention  = 90 * 24 * time.Hour
	DefaultAuditMaxEntries = 100_000
)

// MaxAuditEntries is the most entries one AuditLog call returns.
const MaxAuditEntries = 1000

// AuditQuery selects entries, newest first. From and To are Unix seconds,
// inclusive, 0 for no bound. Contains keeps entries whose actor, action,
// target or source contain it, whatever the case.
type AuditQuery struct {
	First    int // 1..MaxAuditEntries; 0 means MaxAuditEntries
	From, To int64
	Contains string
}

// auditWriteTimeout bounds one entry's write; it runs after the change,
// detached from the request, so a client hanging up does not lose it.
const auditWriteTimeout = 5 * time.Second

// auditStats count the entries by action, and the entries lost, for
// Prometheus.
type auditStats struct {
	mu       sync.Mutex
	recorded map[string]uint64
	failed   uint64
}

// audit records a change stored by an operation of core. The change
// stands if the entry cannot be written: refusing a change that is
// already stored would lie, and an audit trail that blocks the appliance
// when the disk is full would take the admin's tools away when needed
// most. The loss is logged as an error and counted
// (piot_audit_write_failures_total).
func (c *Core) audit(ctx context.Context, a Actor, action, target string) {
	actor := a.Email
	if !a.Authenticated() || actor == "" || a.UserID == System().UserID {
		actor = ActorSystem
	}
	e := &store.AuditEntry{
		ID: primitive.NewObjectID(), TS: c.unix(),
		Actor: actor, Action: action, Target: target, Source: SourceFrom(ctx).String(),
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditWriteTimeout)
	defer cancel()
	err := c.st.Audit.Insert(wctx, e)
	c.auditStats.mu.Lock()
	if err != nil {
		c.auditStats.failed++
	} else {
		c.auditStats.recorded[action]++
	}
	c.auditStats.mu.Unlock()
	if err != nil {
		c.log.Error("audit entry not recorded", "action", action, "actor", actor, "target", target, "err", err)
	}
}

// Record adds an entry for a change made outside core under an admin
// action (a restore, a reboot, an alarm acknowledgement): the caller
// authorized it through core and records it here once done.
func (c *Core) Record(ctx context.Context, a Actor, action, target string) {
	c.audit(ctx, a, action, target)
}

// AuditCounts are the entries recorded since start by action, and the
// entries that could not be written.
func (c *Core) AuditCounts() (recorded map[string]uint64, failed uint64) {
	c.auditStats.mu.Lock()
	defer c.auditStats.mu.Unlock()
	return maps.Clone(c.auditStats.recorded), c.auditStats.failed
}

// AuditLog returns entries, newest first (admins only: the trail names
// every org's users and things).
func (c *Core) AuditLog(ctx context.Context, a Actor, q AuditQuery) ([]AuditEntry, error) {
	if err := AuthorizeAdmin(a, ActReadAudit); err != nil {
		return nil, err
	}
	if q.First < 0 || q.First > MaxAuditEntries {
		return nil, errf(CodeBadInput, "first must be between 1 and %d", MaxAuditEntries)
	}
	if q.From < 0 || q.To < 0 || (q.To > 0 && q.From > q.To) {
		return nil, errf(CodeBadInput, "from and to must be Unix seconds with from <= to")
	}
	if q.First == 0 {
		q.First = MaxAuditEntries
	}
	var filter bson.D
	switch {
	case q.From > 0 && q.To > 0:
		filter = bson.D{{Key: "ts", Value: bson.D{{Key: "$gte", Value: q.From}, {Key: "$lte", Value: q.To}}}}
	case q.From > 0:
		filter = bson.D{{Key: "ts", Value: bson.D{{Key: "$gte", Value: q.From}}}}
	case q.To > 0:
		filter = bson.D{{Key: "ts", Value: bson.D{{Key: "$lte", Value: q.To}}}}
	}
	needle := strings.ToLower(q.Contains)
	out := []AuditEntry{}
	err := c.st.Audit.Newest(ctx, filter, 0, func(e *store.AuditEntry) bool {
		v := AuditEntry{TS: e.TS, Actor: e.Actor, Action: e.Action, Target: e.Target, Source: e.Source}
		if needle == "" || v.matches(needle) {
			out = append(out, v)
		}
		return len(out) < q.First
	})
	if err != nil {
		return nil, internal("cannot read the audit trail", err)
	}
	return out, nil
}

// changes is subject followed by the stored fields an update changed:
// an entry says what changed without the values, some being secrets.
func changes(subject string, old, new any) string {
	upd, err := diff(old, new)
	if err != nil {
		return subject
	}
	var fields []string
	for _, op := range upd {
		for _, f := range op.Value.(bson.D) {
			fields = append(fields, f.Key)
		}
	}
	if len(fields) == 0 {
		return subject
	}
	slices.Sort(fields)
	return subject + " (" + strings.Join(fields, ", ") + ")"
}

func (e AuditEntry) matches(lower string) bool {
	for _, f := range []string{e.Actor, e.Action, e.Target, e.Source} {
		if strings.Contains(strings.ToLower(f), lower) {
			return true
		}
	}
	return false
}

// PruneAudit drops the entries older than the retention and, beyond the
// most entries kept, the oldest. It runs periodically (the appliance's
// core service), never per change. It returns how many entries went.
func (c *Core) PruneAudit(ctx context.Context) (int64, error) {
	old, err := c.st.Audit.DeleteMatching(ctx, bson.D{{Key: "ts", Value: bson.D{{Key: "$lt", Value: c.now().Add(-c.auditRetention).Unix()}}}})
	if err != nil {
		return 0, fmt.Errorf("core: prune the audit trail: %w", err)
	}
	// The newest entry beyond the cap, and everything older, go.
	var last *store.AuditEntry
	err = c.st.Audit.Newest(ctx, nil, int64(c.auditMaxEntries), func(e *store.AuditEntry) bool { last = e; return false })
	if err != nil {
		return old, fmt.Errorf("core: prune the audit trail: %w", err)
	}
	if last == nil {
		return old, nil
	}
	over, err := c.st.Audit.DeleteMatching(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$lte", Value: last.ID}}}})
	if err != nil {
		return old, fmt.Errorf("core: prune the audit trail: %w", err)
	}
	return old + over, nil
}
