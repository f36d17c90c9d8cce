package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors of the findings workflow.
var (
	// ErrRule: the change breaks a workflow rule (acceptance without a
	// reason or expiry, approval by the requester, ...).
	ErrRule = errors.New("not allowed")
)

// Actor is who makes a change: a user name (or "import:<user>", "job").
type Actor string

// loadFindingTx reads the columns the workflow checks.
func (it *invTx) finding(ctx context.Context, id int64) (status, acceptState, requestedBy, severity, host string, port int, svcID int64, err error) {
	err = it.row(ctx, `SELECT status, accept_state, accept_requested_by, severity, host, port, service_id FROM inv_findings WHERE id = ?`, id).
		Scan(&status, &acceptState, &requestedBy, &severity, &host, &port, &svcID)
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("no finding %d: %w", id, ErrNotFound)
	}
	return
}

// moveCount shifts one finding between status counts.
func (it *invTx) moveCount(ctx context.Context, from, to, severity string) error {
	if from == to {
		return nil
	}
	if err := it.addCount(ctx, "findings."+from+"."+severity, -1); err != nil {
		return err
	}
	return it.addCount(ctx, "findings."+to+"."+severity, 1)
}

func (s *sqlStore) flowErr(err error, what string, id int64) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrRule) || errors.Is(err, ErrBadInput) {
		return err
	}
	return s.errf(err, "%s finding %d", what, id)
}

// Acknowledge marks an open finding as seen by someone who will act on it.
func (s *sqlStore) Acknowledge(ctx context.Context, id int64, actor Actor, note string, inTx func(context.Context, *sql.Tx, []Event) error) error {
	_, err := s.inventoryWrite(ctx, inTx, func(it *invTx) error {
		status, _, _, sev, host, port, svc, err := it.finding(ctx, id)
		if err != nil {
			return err
		}
		if status != FindingOpen {
			return fmt.Errorf("finding %d is %s; only an open finding can be acknowledged: %w", id, status, ErrRule)
		}
		seq, err := it.event(ctx, Event{Kind: EvFindingAck, ServiceID: svc, FindingID: id, Host: host, Port: port, Actor: string(actor),
			Severity: sev, Summary: fmt.Sprintf("acknowledged by %s", actor), Detail: jsonDetail(map[string]string{"note": note}), Silent: true})
		if err != nil {
			return err
		}
		if _, err := it.exec(ctx, `UPDATE inv_findings SET status = ?, ack_by = ?, ack_at = ?, ack_note = ?, changed_seq = ? WHERE id = ?`,
			FindingAcknowledged, clean(string(actor)), it.now, clean(note), seq, id); err != nil {
			return err
		}
		return it.moveCount(ctx, status, FindingAcknowledged, sev)
	})
	return s.flowErr(err, "acknowledge", id)
}

// RequestAcceptance asks to accept a finding's risk until `until`, for
// `reason`. The rules: a reason of at least 10 characters, an expiry in
// the future and at most pol.MaxAcceptance ahead, an open or acknowledged
// finding. Someone else approves (ApproveAcceptance).
func (s *sqlStore) RequestAcceptance(ctx context.Context, id int64, actor Actor, reason string, until time.Time, pol InventoryPolicy,
	inTx func(context.Context, *sql.Tx, []Event) error) error {
	reason = strings.TrimSpace(reason)
	if len([]rune(reason)) < 10 {
		return fmt.Errorf("accepting a risk needs a reason of at least 10 characters: %w", ErrRule)
	}
	if pol.MaxAcceptance <= 0 {
		pol = DefaultInventoryPolicy()
	}
	now := s.clock()
	if until.IsZero() || !until.After(now) {
		return fmt.Errorf("accepting a risk needs an expiry in the future: %w", ErrRule)
	}
	if until.After(now.Add(pol.MaxAcceptance)) {
		return fmt.Errorf("an acceptance may last at most %d days: %w", int(pol.MaxAcceptance.Hours()/24), ErrRule)
	}
	if strings.TrimSpace(string(actor)) == "" {
		return fmt.Errorf("an acceptance needs a requester: %w", ErrRule)
	}
	_, err := s.inventoryWrite(ctx, inTx, func(it *invTx) error {
		status, _, _, sev, host, port, svc, err := it.finding(ctx, id)
		if err != nil {
			return err
		}
		if status != FindingOpen && status != FindingAcknowledged {
			return fmt.Errorf("finding %d is %s; only an open or acknowledged finding's risk can be accepted: %w", id, status, ErrRule)
		}
		seq, err := it.event(ctx, Event{Kind: EvAcceptRequested, ServiceID: svc, FindingID: id, Host: host, Port: port, Actor: string(actor),
			Severity: sev, Summary: fmt.Sprintf("%s asks to accept the risk until %s", actor, until.UTC().Format("2006-01-02")),
			Detail: jsonDetail(map[string]string{"reason": reason, "until": until.UTC().Format(time.RFC3339)}), Silent: true})
		if err != nil {
			return err
		}
		_, err = it.exec(ctx, `UPDATE inv_findings SET accept_state = 'requested', accept_reason = ?, accept_until = ?,
			accept_requested_by = ?, accept_requested_at = ?, accept_approved_by = '', accept_approved_at = NULL, accept_warned = 0,
			changed_seq = ? WHERE id = ?`, clean(reason), dbTime(until), clean(string(actor)), it.now, seq, id)
		return err
	})
	return s.flowErr(err, "request acceptance of", id)
}

// ApproveAcceptance approves a requested acceptance: the approver must
// not be the requester. The finding becomes accepted until its expiry.
func (s *sqlStore) ApproveAcceptance(ctx context.Context, id int64, approver Actor, inTx func(context.Context, *sql.Tx, []Event) error) error {
	_, err := s.inventoryWrite(ctx, inTx, func(it *invTx) error {
		status, acc, requester, sev, host, port, svc, err := it.finding(ctx, id)
		if err != nil {
			return err
		}
		if acc != "requested" {
			return fmt.Errorf("finding %d has no acceptance awaiting approval: %w", id, ErrRule)
		}
		if strings.EqualFold(strings.TrimPrefix(requester, "import:"), strings.TrimPrefix(string(approver), "import:")) || approver == "" {
			return fmt.Errorf("an acceptance must be approved by someone other than %s, who asked for it: %w", requester, ErrRule)
		}
		var until sql.NullTime
		if err := it.row(ctx, `SELECT accept_until FROM inv_findings WHERE id = ?`, id).Scan(&until); err != nil {
			return err
		}
		if !until.Valid || !until.Time.After(it.now) {
			return fmt.Errorf("the requested acceptance of finding %d has already expired: %w", id, ErrRule)
		}
		seq, err := it.event(ctx, Event{Kind: EvAccepted, ServiceID: svc, FindingID: id, Host: host, Port: port, Actor: string(approver),
			Severity: sev, Summary: fmt.Sprintf("risk accepted by %s (asked by %s) until %s", approver, requester, until.Time.UTC().Format("2006-01-02")),
			Silent: true})
		if err != nil {
			return err
		}
		if _, err := it.exec(ctx, `UPDATE inv_findings SET status = ?, accept_state = 'approved', accept_approved_by = ?, accept_approved_at = ?,
			changed_seq = ? WHERE id = ?`, FindingAccepted, clean(string(approver)), it.now, seq, id); err != nil {
			return err
		}
		if err := it.moveCount(ctx, status, FindingAccepted, sev); err != nil {
			return err
		}
		return it.touchService(ctx, svc)
	})
	return s.flowErr(err, "approve acceptance of", id)
}

// RejectAcceptance turns down a requested acceptance.
func (s *sqlStore) RejectAcceptance(ctx context.Context, id int64, actor Actor, inTx func(context.Context, *sql.Tx, []Event) error) error {
	_, err := s.inventoryWrite(ctx, inTx, func(it *invTx) error {
		_, acc, requester, sev, host, port, svc, err := it.finding(ctx, id)
		if err != nil {
			return err
		}
		if acc != "requested" {
			return fmt.Errorf("finding %d has no acceptance awaiting approval: %w", id, ErrRule)
		}
		seq, err := it.event(ctx, Event{Kind: EvAcceptRejected, ServiceID: svc, FindingID: id, Host: host, Port: port, Actor: string(actor),
			Severity: sev, Summary: fmt.Sprintf("acceptance asked by %s turned down by %s", requester, actor), Silent: true})
		if err != nil {
			return err
		}
		_, err = it.exec(ctx, `UPDATE inv_findings SET accept_state = '', changed_seq = ? WHERE id = ?`, seq, id)
		return err
	})
	return s.flowErr(err, "reject acceptance of", id)
}

// SetServiceTags replaces a service's tags (comma-separated, trimmed).
func (s *sqlStore) SetServiceTags(ctx context.Context, id int64, tags []string, actor Actor) error {
	var clean []string
	for _, t := range tags {
		t = strings.ToLower(strings.TrimSpace(t))
		if t == "" {
			continue
		}
		if len(t) > 40 || strings.ContainsAny(t, ",%_") {
			return fmt.Errorf("tag %q: at most 40 characters, no commas: %w", t, ErrBadInput)
		}
		clean = append(clean, t)
	}
	joined := strings.Join(clean, ",")
	_, err := s.inventoryWrite(ctx, nil, func(it *invTx) error {
		var host string
		var port int
		if err := it.row(ctx, `SELECT host, port FROM inv_services WHERE id = ?`, id).Scan(&host, &port); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("no service %d: %w", id, ErrNotFound)
			}
			return err
		}
		seq, err := it.event(ctx, Event{Kind: EvTagged, ServiceID: id, Host: host, Port: port, Actor: string(actor),
			Summary: "tags set to " + orDash(joined), Silent: true})
		if err != nil {
			return err
		}
		if _, err := it.exec(ctx, `UPDATE inv_services SET tags = ?, changed_seq = ? WHERE id = ?`, joined, seq, id); err != nil {
			return err
		}
		_, err = it.exec(ctx, `UPDATE inv_findings SET tags = ? WHERE service_id = ?`, joined, id)
		return err
	})
	return s.flowErr(err, "tag service of", id)
}

// SnoozeService silences alerts about a service until `until` (zero
// clears the snooze).
func (s *sqlStore) SnoozeService(ctx context.Context, id int64, until time.Time, actor Actor) error {
	_, err := s.inventoryWrite(ctx, nil, func(it *invTx) error {
		var host string
		var port int
		if err := it.row(ctx, `SELECT host, port FROM inv_services WHERE id = ?`, id).Scan(&host, &port); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("no service %d: %w", id, ErrNotFound)
			}
			return err
		}
		var u any
		summary := "snooze cleared"
		if !until.IsZero() {
			u = dbTime(until)
			summary = "alerts snoozed until " + until.UTC().Format(time.RFC3339)
		}
		seq, err := it.event(ctx, Event{Kind: EvServiceSnoozed, ServiceID: id, Host: host, Port: port, Actor: string(actor), Summary: summary, Silent: true})
		if err != nil {
			return err
		}
		_, err = it.exec(ctx, `UPDATE inv_services SET snoozed_until = ?, changed_seq = ? WHERE id = ?`, u, seq, id)
		return err
	})
	return s.flowErr(err, "snooze service of", id)
}

// MaintainResult says what Maintain changed.
type MaintainResult struct {
	Aged, Reopened, Warned, Breached int
	Events                           []Event
}

// Maintain applies the time-based rules: services unseen for the policy's
// ages move to offline, stale, expired; expired acceptances reopen their
// findings; acceptances about to expire warn once; findings past their SLA
// breach once. Events go through inTx like ApplyRun's.
func (s *sqlStore) Maintain(ctx context.Context, pol InventoryPolicy, inTx func(context.Context, *sql.Tx, []Event) error) (MaintainResult, error) {
	var res MaintainResult
	if pol.SLA == nil {
		pol = DefaultInventoryPolicy()
	}
	events, err := s.inventoryWrite(ctx, inTx, func(it *invTx) error {
		// Ages, furthest first so a long-unseen service jumps straight on.
		for _, step := range []struct {
			to   string
			age  time.Duration
			from []string
		}{
			{StateExpired, pol.ExpireAfter, []string{StateOnline, StateOffline, StateStale}},
			{StateStale, pol.StaleAfter, []string{StateOnline, StateOffline}},
			{StateOffline, pol.OfflineAfter, []string{StateOnline}},
		} {
			if step.age <= 0 {
				continue
			}
			cut := dbTime(it.now.Add(-step.age))
			q := `SELECT id, host, port, state, owner, snoozed_until FROM inv_services WHERE last_seen < ? AND state IN (` +
				placeholders(len(step.from)) + `)`
			args := []any{cut}
			for _, f := range step.from {
				args = append(args, f)
			}
			rows, err := it.tx.QueryContext(ctx, it.s.d.rebind(q), args...)
			if err != nil {
				return err
			}
			type mv struct {
				id          int64
				host, state string
				port        int
				owner       string
				snoozed     sql.NullTime
			}
			var mvs []mv
			for rows.Next() {
				var m mv
				if err := rows.Scan(&m.id, &m.host, &m.port, &m.state, &m.owner, &m.snoozed); err != nil {
					rows.Close()
					return err
				}
				mvs = append(mvs, m)
			}
			rows.Close()
			for _, m := range mvs {
				seq, err := it.event(ctx, Event{Kind: EvServiceState, ServiceID: m.id, Host: m.host, Port: m.port, Owner: m.owner,
					Summary: fmt.Sprintf("%s → %s (not seen for %s)", m.state, step.to, step.age), Silent: true,
					Detail: jsonDetail(map[string]string{"from": m.state, "to": step.to})})
				if err != nil {
					return err
				}
				if _, err := it.exec(ctx, `UPDATE inv_services SET state = ?, state_since = ?, changed_seq = ? WHERE id = ?`,
					step.to, it.now, seq, m.id); err != nil {
					return err
				}
				res.Aged++
			}
		}
		// Expired acceptances reopen.
		if err := it.eachFinding(ctx, `status = 'accepted' AND accept_until <= ?`, []any{it.now}, func(f flowRow) error {
			seq, err := it.event(ctx, Event{Kind: EvFindingReopened, ServiceID: f.svc, FindingID: f.id, Host: f.host, Port: f.port,
				Owner: f.owner, Tags: f.tags, Severity: f.sev, Summary: fmt.Sprintf("acceptance expired; %s %s on %s:%d reopened", f.sev, f.fid, f.host, f.port)})
			if err != nil {
				return err
			}
			if _, err := it.exec(ctx, `UPDATE inv_findings SET status = 'open', accept_state = '', changed_seq = ? WHERE id = ?`, seq, f.id); err != nil {
				return err
			}
			res.Reopened++
			if err := it.moveCount(ctx, FindingAccepted, FindingOpen, f.sev); err != nil {
				return err
			}
			return it.touchService(ctx, f.svc)
		}); err != nil {
			return err
		}
		// Warn ahead of expiry, once.
		if pol.WarnBefore > 0 {
			if err := it.eachFinding(ctx, `status = 'accepted' AND accept_warned = 0 AND accept_until <= ?`, []any{dbTime(it.now.Add(pol.WarnBefore))},
				func(f flowRow) error {
					if _, err := it.event(ctx, Event{Kind: EvAcceptExpiring, ServiceID: f.svc, FindingID: f.id, Host: f.host, Port: f.port,
						Owner: f.owner, Tags: f.tags, Severity: f.sev, Summary: fmt.Sprintf("acceptance of %s on %s:%d expires soon", f.fid, f.host, f.port)}); err != nil {
						return err
					}
					res.Warned++
					_, err := it.exec(ctx, `UPDATE inv_findings SET accept_warned = 1 WHERE id = ?`, f.id)
					return err
				}); err != nil {
				return err
			}
		}
		// SLA breaches, once per opening.
		return it.eachFinding(ctx, `status IN ('open', 'acknowledged') AND sla_breached = 0 AND sla_due IS NOT NULL AND sla_due < ?`, []any{it.now},
			func(f flowRow) error {
				seq, err := it.event(ctx, Event{Kind: EvSLABreach, ServiceID: f.svc, FindingID: f.id, Host: f.host, Port: f.port,
					Owner: f.owner, Tags: f.tags, Severity: f.sev, Summary: fmt.Sprintf("%s %s on %s:%d is past its fix-by date", f.sev, f.fid, f.host, f.port)})
				if err != nil {
					return err
				}
				res.Breached++
				_, err = it.exec(ctx, `UPDATE inv_findings SET sla_breached = 1, changed_seq = ? WHERE id = ?`, seq, f.id)
				return err
			})
	})
	if err != nil {
		return res, s.errf(err, "maintain the inventory")
	}
	if res.Aged > 0 {
		// State counts moved: recount (rare; ages move at most daily).
		if _, err := s.inventoryWrite(ctx, nil, func(it *invTx) error { return it.recount(ctx) }); err != nil {
			return res, s.errf(err, "recount the inventory")
		}
	}
	res.Events = events
	return res, nil
}

type flowRow struct {
	id, svc                     int64
	host, sev, fid, owner, tags string
	port                        int
}

func (it *invTx) eachFinding(ctx context.Context, where string, args []any, fn func(flowRow) error) error {
	rows, err := it.tx.QueryContext(ctx, it.s.d.rebind(`SELECT id, service_id, host, port, severity, finding_id, owner, tags FROM inv_findings WHERE `+where), args...)
	if err != nil {
		return err
	}
	var fs []flowRow
	for rows.Next() {
		var f flowRow
		if err := rows.Scan(&f.id, &f.svc, &f.host, &f.port, &f.sev, &f.fid, &f.owner, &f.tags); err != nil {
			rows.Close()
			return err
		}
		fs = append(fs, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, f := range fs {
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func jsonDetail(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
