package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"strconv"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

// # The inventory
//
// Runs are snapshots; the inventory is what is true over time. Applying a
// run (ApplyRun) folds its services into one row per service and one row
// per finding, each with a stable fingerprint, and writes every change as
// an Event: a host's timeline and the change feed are the same log.
//
// Rules, enforced here so every caller (the dashboard, the API, imports,
// jobs) gets the same behaviour:
//   - A run is applied at most once (the inv_runs ledger): re-importing
//     the same run changes nothing.
//   - Only a run that finished (completed its scope) closes findings as
//     "not observed" and marks unseen services offline, and only for
//     services its scope covered. A failed or interrupted run marks what
//     it should have seen as stale and resolves nothing.
//   - Accepting a risk needs a reason and an expiry within MaxAcceptance,
//     and is approved by someone other than the requester. An expired
//     acceptance reopens the finding.

// Service and finding states.
const (
	StateOnline  = "online"
	StateOffline = "offline"
	StateStale   = "stale"
	StateExpired = "expired"

	FindingOpen         = "open"
	FindingAcknowledged = "acknowledged"
	FindingAccepted     = "accepted"
	FindingResolved     = "resolved"
)

// Event kinds.
const (
	EvServiceNew         = "service.new"
	EvServiceBack        = "service.back"
	EvServiceNotObserved = "service.not_observed"
	EvServiceState       = "service.state"
	EvServiceVersion     = "service.version"
	EvAuthDropped        = "service.auth_dropped"
	EvAuthAdded          = "service.auth_added"
	EvModelAdded         = "model.added"
	EvModelRemoved       = "model.removed"
	EvPromptChanged      = "model.prompt_changed"
	EvFindingOpened      = "finding.opened"
	EvFindingReopened    = "finding.reopened"
	EvFindingResolved    = "finding.resolved"
	EvFindingStale       = "finding.stale"
	EvFindingAck         = "finding.acknowledged"
	EvAcceptRequested    = "finding.accept_requested"
	EvAccepted           = "finding.accepted"
	EvAcceptRejected     = "finding.accept_rejected"
	EvAcceptExpiring     = "finding.accept_expiring"
	EvSLABreach          = "finding.sla_breach"
	EvServiceSnoozed     = "service.snoozed"
	EvTagged             = "tags.changed"
)

// InvService is one service in the inventory.
type InvService struct {
	ID           int64      `json:"id"`
	FP           string     `json:"fingerprint"`
	Host         string     `json:"host"`
	Port         int        `json:"port"`
	Hostname     string     `json:"hostname,omitempty"`
	Product      string     `json:"product"`
	Version      string     `json:"version"`
	Auth         string     `json:"auth"`
	TLS          bool       `json:"tls"`
	Risk         string     `json:"risk"`
	Models       int        `json:"models"`
	OpenFindings int        `json:"open_findings"`
	State        string     `json:"state"`
	StateSince   time.Time  `json:"state_since"`
	FirstSeen    time.Time  `json:"first_seen"`
	LastSeen     time.Time  `json:"last_seen"`
	FirstRun     string     `json:"first_run"`
	LastRun      string     `json:"last_run"`
	SnoozedUntil *time.Time `json:"snoozed_until,omitempty"`
	Owner        string     `json:"owner,omitempty"`
	Tags         string     `json:"tags,omitempty"`
	ChangedSeq   int64      `json:"changed_seq"`
}

// InvFinding is one finding in the inventory.
type InvFinding struct {
	ID                int64      `json:"id"`
	FP                string     `json:"fingerprint"`
	ServiceID         int64      `json:"service_id"`
	Host              string     `json:"host"`
	Port              int        `json:"port"`
	Product           string     `json:"product"`
	FindingID         string     `json:"finding_id"`
	Severity          string     `json:"severity"`
	Title             string     `json:"title"`
	Detail            string     `json:"detail,omitempty"`
	Status            string     `json:"status"`
	Stale             bool       `json:"stale"`
	FirstSeen         time.Time  `json:"first_seen"`
	LastSeen          time.Time  `json:"last_seen"`
	OpenedAt          time.Time  `json:"opened_at"`
	ResolvedAt        *time.Time `json:"resolved_at,omitempty"`
	Resolution        string     `json:"resolution,omitempty"`
	SLADue            *time.Time `json:"sla_due,omitempty"`
	SLABreached       bool       `json:"sla_breached"`
	AckBy             string     `json:"ack_by,omitempty"`
	AcceptState       string     `json:"accept_state,omitempty"`
	AcceptReason      string     `json:"accept_reason,omitempty"`
	AcceptUntil       *time.Time `json:"accept_until,omitempty"`
	AcceptRequestedBy string     `json:"accept_requested_by,omitempty"`
	AcceptApprovedBy  string     `json:"accept_approved_by,omitempty"`
	Owner             string     `json:"owner,omitempty"`
	Tags              string     `json:"tags,omitempty"`
	ChangedSeq        int64      `json:"changed_seq"`
}

// Event is one change in the inventory.
type Event struct {
	Seq       int64           `json:"seq"`
	At        time.Time       `json:"at"`
	Kind      string          `json:"kind"`
	ServiceID int64           `json:"service_id,omitempty"`
	FindingID int64           `json:"finding_id,omitempty"`
	RunID     string          `json:"run_id,omitempty"`
	Host      string          `json:"host,omitempty"`
	Port      int             `json:"port,omitempty"`
	Actor     string          `json:"actor,omitempty"`
	Severity  string          `json:"severity,omitempty"`
	Summary   string          `json:"summary"`
	Detail    json.RawMessage `json:"detail,omitempty"`
	// Owner is the owner of the service at the time (not stored; filled
	// for alert routing).
	Owner string `json:"owner,omitempty"`
	// Tags of the service (not stored; for alert rules).
	Tags string `json:"tags,omitempty"`
	// Silent events are recorded but raise no alert (the finding's risk is
	// accepted, the host is snoozed).
	Silent bool `json:"silent,omitempty"`
}

// ServiceFP is the stable fingerprint of a service: its address and port.
func ServiceFP(host string, port int) string {
	h := host
	if a, err := netip.ParseAddr(host); err == nil {
		h = a.Unmap().String()
	}
	sum := sha256.Sum256([]byte("llmfence-service\x00" + h + "\x00" + strconv.Itoa(port)))
	return hex.EncodeToString(sum[:12])
}

// FindingFP is the stable fingerprint of a finding: its service, its
// catalogue ID and what on the service triggered it.
func FindingFP(serviceFP, findingID, detail string) string {
	sum := sha256.Sum256([]byte("llmfence-finding\x00" + serviceFP + "\x00" + findingID + "\x00" + detail))
	return hex.EncodeToString(sum[:12])
}

// InventoryPolicy holds the ages and SLAs the inventory applies.
type InventoryPolicy struct {
	// OfflineAfter, StaleAfter, ExpireAfter: a service not seen for this
	// long moves to offline, stale, expired.
	OfflineAfter, StaleAfter, ExpireAfter time.Duration
	// SLA is the time to fix per severity; a missing severity has none.
	SLA map[service.Severity]time.Duration
	// MaxAcceptance caps how far ahead an acceptance may expire.
	MaxAcceptance time.Duration
	// WarnBefore: an acceptance expiring within this raises a warning.
	WarnBefore time.Duration
}

// DefaultInventoryPolicy: offline after 2 days unseen, stale after 7,
// expired after 30; SLAs of 7/30/90/180 days for critical/high/medium/low;
// acceptances up to a year, warned 7 days ahead.
func DefaultInventoryPolicy() InventoryPolicy {
	day := 24 * time.Hour
	return InventoryPolicy{
		OfflineAfter: 2 * day, StaleAfter: 7 * day, ExpireAfter: 30 * day,
		SLA: map[service.Severity]time.Duration{
			service.SeverityCritical: 7 * day, service.SeverityHigh: 30 * day,
			service.SeverityMedium: 90 * day, service.SeverityLow: 180 * day,
		},
		MaxAcceptance: 365 * day, WarnBefore: 7 * day,
	}
}

// ApplyOptions hook a run's application into the rest of serve.
type ApplyOptions struct {
	Policy InventoryPolicy
	// Coverage says which of pairs the run's scope covered. nil, or an
	// error, means "unknown": nothing unseen is closed or marked stale.
	Coverage func(ctx context.Context, run Run, pairs []netip.AddrPort) ([]bool, error)
	// Owner routes a service to its owner ("" = none).
	Owner func(host string, port int) string
	// InTx is called inside the transaction that records the events,
	// before it commits: enqueue alert jobs here so an alert exists if
	// and only if its change does.
	InTx func(ctx context.Context, tx *sql.Tx, events []Event) error
}

// ApplyResult says what applying a run changed.
type ApplyResult struct {
	// Applied is false when the run had been applied before (nothing
	// changed) or is still running.
	Applied  bool    `json:"applied"`
	Complete bool    `json:"complete"`
	Observed int     `json:"observed"`
	New      int     `json:"new"`
	Closed   int     `json:"closed"`
	Staled   int     `json:"staled"`
	Events   []Event `json:"-"`
}

// nullTime converts a nullable column.
func nullTime(n sql.NullTime) *time.Time {
	if !n.Valid {
		return nil
	}
	t := n.Time.UTC()
	return &t
}
