package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

// InventoryStore is the inventory of llmfence serve. Every store Open
// returns implements it (see ServerStore).
type InventoryStore interface {
	ApplyRun(ctx context.Context, runID string, o ApplyOptions) (ApplyResult, error)
	UnappliedRuns(ctx context.Context, limit int) ([]string, error)
}

// invTx is one inventory write: the transaction, the events it produced.
type invTx struct {
	s      *sqlStore
	tx     *sql.Tx
	now    time.Time
	events []Event
}

func (it *invTx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return it.tx.ExecContext(ctx, it.s.d.rebind(q), args...)
}

func (it *invTx) row(ctx context.Context, q string, args ...any) *sql.Row {
	return it.tx.QueryRowContext(ctx, it.s.d.rebind(q), args...)
}

// event records ev and returns its sequence number.
func (it *invTx) event(ctx context.Context, ev Event) (int64, error) {
	if ev.At.IsZero() {
		ev.At = it.now
	}
	runID := int64(0)
	if ev.RunID != "" {
		runID, _ = parseID(ev.RunID)
	}
	detail := ""
	if len(ev.Detail) > 0 {
		detail = string(ev.Detail)
	}
	err := it.row(ctx, `INSERT INTO inv_events (at, kind, service_id, finding_id, run_id, host, port, actor, severity, summary, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`, dbTime(ev.At), ev.Kind, ev.ServiceID, ev.FindingID, runID,
		clean(ev.Host), ev.Port, clean(ev.Actor), ev.Severity, clean(ev.Summary), clean(detail)).Scan(&ev.Seq)
	if err != nil {
		return 0, err
	}
	it.events = append(it.events, ev)
	return ev.Seq, nil
}

// inventoryWrite runs fn in a write transaction holding the inventory
// lock, then hands the events to inTx before committing.
func (s *sqlStore) inventoryWrite(ctx context.Context, inTx func(context.Context, *sql.Tx, []Event) error, fn func(it *invTx) error) ([]Event, error) {
	var events []Event
	err := s.write(ctx, func(tx *sql.Tx) error {
		it := &invTx{s: s, tx: tx, now: s.clock()}
		if _, err := it.exec(ctx, `UPDATE inv_lock SET n = n + 1 WHERE id = 1`); err != nil {
			return err
		}
		if err := fn(it); err != nil {
			return err
		}
		if inTx != nil && len(it.events) > 0 {
			if err := inTx(ctx, tx, it.events); err != nil {
				return fmt.Errorf("enqueue alerts: %w", err)
			}
		}
		events = it.events
		return nil
	})
	return events, err
}

// UnappliedRuns lists ended runs not yet applied to the inventory, oldest
// first.
func (s *sqlStore) UnappliedRuns(ctx context.Context, limit int) ([]string, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT r.id FROM runs r LEFT JOIN inv_runs i ON i.run_id = r.id
		WHERE r.status <> ? AND i.run_id IS NULL ORDER BY r.id LIMIT ?`), string(StatusRunning), limit)
	if err != nil {
		return nil, s.errf(err, "list runs to apply to the inventory")
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, s.errf(err, "list runs to apply to the inventory")
		}
		out = append(out, formatID(id))
	}
	return out, rows.Err()
}

type invSvcRow struct {
	id               int64
	host             string
	port             int
	state            string
	lastRun          int64
	lastSeen         time.Time
	doc, owner, tags string
	snoozed          sql.NullTime
}

func (s *sqlStore) ApplyRun(ctx context.Context, runID string, o ApplyOptions) (ApplyResult, error) {
	var res ApplyResult
	id, err := parseID(runID)
	if err != nil {
		return res, err
	}
	run, err := s.GetRun(ctx, runID)
	if err != nil {
		return res, err
	}
	if run.Status == StatusRunning {
		return res, nil
	}
	if o.Policy.SLA == nil {
		o.Policy = DefaultInventoryPolicy()
	}
	svcs, err := s.services(ctx, id)
	if err != nil {
		return res, s.errf(err, "apply run %s: read its services", runID)
	}
	res.Complete = run.Status == StatusFinished

	// What the run should have seen but did not: decided before the
	// transaction (coverage may resolve host names).
	observed := make(map[string]bool, len(svcs))
	for i := range svcs {
		observed[ServiceFP(svcs[i].Host, svcs[i].Port)] = true
	}
	var unseen []int64
	if o.Coverage != nil {
		unseen, err = s.unseenCovered(ctx, run, id, observed, o.Coverage)
		if err != nil {
			s.log.Warn("cannot tell what the run covered; nothing it did not see is closed", "run", runID, "err", err)
			unseen = nil
		}
	}

	events, err := s.inventoryWrite(ctx, o.InTx, func(it *invTx) error {
		var done int
		err := it.row(ctx, `SELECT COUNT(*) FROM inv_runs WHERE run_id = ?`, id).Scan(&done)
		if err != nil || done > 0 {
			return err
		}
		res.Applied = true
		for i := range svcs {
			isNew, err := it.applyService(ctx, &svcs[i], id, res.Complete, o)
			if err != nil {
				return fmt.Errorf("%s: %w", svcs[i].Key(), err)
			}
			res.Observed++
			if isNew {
				res.New++
			}
		}
		for _, sid := range unseen {
			closed, staled, err := it.unseenService(ctx, sid, id, res.Complete)
			if err != nil {
				return err
			}
			res.Closed += closed
			res.Staled += staled
		}
		if _, err := it.exec(ctx, `INSERT INTO inv_runs (run_id, status, complete, applied_at, observed, closed, staled)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, id, string(run.Status), boolInt(res.Complete), it.now, res.Observed, res.Closed, res.Staled); err != nil {
			return err
		}
		return it.recount(ctx)
	})
	if err != nil {
		return ApplyResult{}, s.errf(err, "apply run %s to the inventory", runID)
	}
	res.Events = events
	return res, nil
}

// unseenCovered returns the inventory services the run's scope covered
// that it did not observe, and that no later run has seen.
func (s *sqlStore) unseenCovered(ctx context.Context, run Run, runID int64, observed map[string]bool,
	coverage func(context.Context, Run, []netip.AddrPort) ([]bool, error)) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT id, fp, host, port FROM inv_services WHERE last_run <= ?`), runID)
	if err != nil {
		return nil, err
	}
	var ids []int64
	var pairs []netip.AddrPort
	for rows.Next() {
		var (
			id       int64
			fp, host string
			port     int
		)
		if err := rows.Scan(&id, &fp, &host, &port); err != nil {
			rows.Close()
			return nil, err
		}
		if observed[fp] {
			continue
		}
		a, err := netip.ParseAddr(host)
		if err != nil || port <= 0 || port > 65535 {
			continue
		}
		ids = append(ids, id)
		pairs = append(pairs, netip.AddrPortFrom(a, uint16(port)))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(pairs) == 0 {
		return nil, nil
	}
	in, err := coverage(ctx, run, pairs)
	if err != nil {
		return nil, err
	}
	if len(in) != len(pairs) {
		return nil, errors.New("coverage answered for a different number of services")
	}
	var out []int64
	for i, ok := range in {
		if ok {
			out = append(out, ids[i])
		}
	}
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// applyService folds one observed service into the inventory.
func (it *invTx) applyService(ctx context.Context, sv *service.Service, runID int64, complete bool, o ApplyOptions) (bool, error) {
	fp := ServiceFP(sv.Host, sv.Port)
	seen := it.now
	if !sv.ScannedAt.IsZero() {
		seen = dbTime(sv.ScannedAt)
	}
	doc, err := json.Marshal(sv)
	if err != nil {
		return false, err
	}
	owner := ""
	if o.Owner != nil {
		owner = o.Owner(sv.Host, sv.Port)
	}
	runRef := formatID(runID)
	var cur invSvcRow
	err = it.row(ctx, `SELECT id, state, last_run, last_seen, doc, owner, tags, snoozed_until FROM inv_services WHERE fp = ?`, fp).
		Scan(&cur.id, &cur.state, &cur.lastRun, &cur.lastSeen, &cur.doc, &cur.owner, &cur.tags, &cur.snoozed)
	isNew := errors.Is(err, sql.ErrNoRows)
	if err != nil && !isNew {
		return false, err
	}
	silent := cur.snoozed.Valid && cur.snoozed.Time.After(it.now)
	base := Event{Host: clean(sv.Host), Port: sv.Port, RunID: runRef, Owner: owner, Silent: silent}
	if isNew {
		err := it.row(ctx, `INSERT INTO inv_services (fp, host, port, hostname, product, version, auth, tls, risk, risk_rank, model_count,
			state, state_since, first_seen, last_seen, first_run, last_run, owner, doc)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			fp, clean(sv.Host), sv.Port, clean(sv.Hostname), clean(sv.Product), clean(sv.Version), clean(string(sv.Auth)),
			boolInt(sv.TLS), clean(string(sv.Risk)), sv.Risk.Rank(), len(sv.Models), StateOnline, seen, seen, seen,
			runID, runID, clean(owner), clean(string(doc))).Scan(&cur.id)
		if err != nil {
			return false, err
		}
		ev := base
		ev.Kind, ev.ServiceID, ev.Severity = EvServiceNew, cur.id, string(sv.Risk)
		ev.Summary = fmt.Sprintf("new %s %s at %s, authentication %s", orDash(sv.Product), sv.Version, sv.Key(), sv.Auth)
		ev.Detail, _ = json.Marshal(map[string]any{"product": sv.Product, "version": sv.Version, "auth": sv.Auth, "models": modelNames(sv.Models)})
		if _, err := it.event(ctx, ev); err != nil {
			return false, err
		}
	} else if runID >= cur.lastRun {
		if owner == "" {
			owner = cur.owner
		}
		base.Owner, base.Tags = owner, cur.tags
		var old service.Service
		_ = json.Unmarshal([]byte(cur.doc), &old)
		for _, ev := range diffService(&old, sv) {
			e := base
			e.Kind, e.Summary, e.Detail, e.ServiceID, e.Severity = ev.Kind, ev.Summary, ev.Detail, cur.id, string(sv.Risk)
			if _, err := it.event(ctx, e); err != nil {
				return false, err
			}
		}
		if cur.state != StateOnline {
			e := base
			e.Kind, e.ServiceID, e.Summary = EvServiceBack, cur.id, fmt.Sprintf("%s is answering again (was %s)", sv.Key(), cur.state)
			if _, err := it.event(ctx, e); err != nil {
				return false, err
			}
		}
		if _, err := it.exec(ctx, `UPDATE inv_services SET hostname = CASE WHEN ? <> '' THEN ? ELSE hostname END, product = ?, version = ?,
			auth = ?, tls = ?, risk = ?, risk_rank = ?, model_count = ?, state = ?,
			state_since = CASE WHEN state <> ? THEN ? ELSE state_since END, last_seen = ?, last_run = ?, owner = ?, doc = ?
			WHERE id = ?`, clean(sv.Hostname), clean(sv.Hostname), clean(sv.Product), clean(sv.Version), clean(string(sv.Auth)),
			boolInt(sv.TLS), clean(string(sv.Risk)), sv.Risk.Rank(), len(sv.Models), StateOnline, StateOnline, seen, seen, runID,
			clean(owner), clean(string(doc)), cur.id); err != nil {
			return false, err
		}
	} else {
		// An older run applied late: it can only move first-seen back.
		if _, err := it.exec(ctx, `UPDATE inv_services SET first_seen = ?, first_run = ? WHERE id = ? AND first_seen > ?`,
			seen, runID, cur.id, seen); err != nil {
			return false, err
		}
		return false, nil
	}
	base.Owner = owner
	if err := it.applyFindings(ctx, cur.id, fp, sv, runID, complete, seen, base, o.Policy); err != nil {
		return false, err
	}
	return isNew, it.touchService(ctx, cur.id)
}

// touchService recounts a service's open findings and stamps its change.
func (it *invTx) touchService(ctx context.Context, id int64) error {
	seq := int64(0)
	if n := len(it.events); n > 0 {
		seq = it.events[n-1].Seq
	}
	_, err := it.exec(ctx, `UPDATE inv_services SET open_findings = (SELECT COUNT(*) FROM inv_findings
		WHERE service_id = ? AND status IN (?, ?)), changed_seq = CASE WHEN ? > changed_seq THEN ? ELSE changed_seq END WHERE id = ?`,
		id, FindingOpen, FindingAcknowledged, seq, seq, id)
	return err
}

type invFindRow struct {
	id          int64
	fp, status  string
	stale       bool
	acceptState string
}

func (it *invTx) applyFindings(ctx context.Context, svcID int64, svcFP string, sv *service.Service, runID int64, complete bool,
	seen time.Time, base Event, pol InventoryPolicy) error {
	rows, err := it.tx.QueryContext(ctx, it.s.d.rebind(`SELECT id, fp, status, stale, accept_state FROM inv_findings WHERE service_id = ?`), svcID)
	if err != nil {
		return err
	}
	existing := map[string]invFindRow{}
	for rows.Next() {
		var r invFindRow
		var stale int
		if err := rows.Scan(&r.id, &r.fp, &r.status, &stale, &r.acceptState); err != nil {
			rows.Close()
			return err
		}
		r.stale = stale != 0
		existing[r.fp] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	current := map[string]bool{}
	for _, f := range sv.Findings {
		fp := FindingFP(svcFP, f.ID, f.Detail)
		if current[fp] {
			continue
		}
		current[fp] = true
		var due any
		if d, ok := pol.SLA[f.Severity]; ok && d > 0 {
			due = dbTime(seen.Add(d))
		}
		ev := base
		ev.ServiceID, ev.Severity = svcID, string(f.Severity)
		ev.Detail, _ = json.Marshal(map[string]string{"finding": f.ID, "title": f.Title, "detail": f.Detail, "product": sv.Product})
		r, ok := existing[fp]
		switch {
		case !ok:
			var fid int64
			err := it.row(ctx, `INSERT INTO inv_findings (fp, service_id, host, port, product, finding_id, severity, severity_rank, title, detail,
				status, first_seen, last_seen, last_run, opened_at, sla_due, owner)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, fp, svcID, clean(sv.Host), sv.Port,
				clean(sv.Product), clean(f.ID), clean(string(f.Severity)), f.Severity.Rank(), clean(f.Title), clean(f.Detail),
				FindingOpen, seen, seen, runID, seen, due, clean(base.Owner)).Scan(&fid)
			if err != nil {
				return err
			}
			ev.Kind, ev.FindingID = EvFindingOpened, fid
			ev.Summary = fmt.Sprintf("%s %s on %s: %s", f.Severity, f.ID, sv.Key(), f.Title)
			seq, err := it.event(ctx, ev)
			if err != nil {
				return err
			}
			if _, err := it.exec(ctx, `UPDATE inv_findings SET changed_seq = ? WHERE id = ?`, seq, fid); err != nil {
				return err
			}
		case r.status == FindingResolved:
			ev.Kind, ev.FindingID = EvFindingReopened, r.id
			ev.Summary = fmt.Sprintf("%s %s on %s is back: %s", f.Severity, f.ID, sv.Key(), f.Title)
			seq, err := it.event(ctx, ev)
			if err != nil {
				return err
			}
			if _, err := it.exec(ctx, `UPDATE inv_findings SET status = ?, stale = 0, resolved_at = NULL, resolved_run = 0, resolution = '',
				opened_at = ?, sla_due = ?, sla_breached = 0, last_seen = ?, last_run = ?, severity = ?, severity_rank = ?, title = ?,
				changed_seq = ? WHERE id = ?`, FindingOpen, seen, due, seen, runID, clean(string(f.Severity)), f.Severity.Rank(),
				clean(f.Title), seq, r.id); err != nil {
				return err
			}
		default:
			if _, err := it.exec(ctx, `UPDATE inv_findings SET stale = 0, last_seen = ?, last_run = ?, severity = ?, severity_rank = ?,
				title = ? WHERE id = ?`, seen, runID, clean(string(f.Severity)), f.Severity.Rank(), clean(f.Title), r.id); err != nil {
				return err
			}
		}
	}
	// Findings of this service that the run did not report.
	for fp, r := range existing {
		if current[fp] || r.status == FindingResolved {
			continue
		}
		if err := it.unseenFinding(ctx, r, runID, complete, base, svcID); err != nil {
			return err
		}
	}
	return nil
}

// unseenFinding closes (complete run) or marks stale (partial run) a
// finding the run did not see.
func (it *invTx) unseenFinding(ctx context.Context, r invFindRow, runID int64, complete bool, base Event, svcID int64) error {
	ev := base
	ev.ServiceID, ev.FindingID = svcID, r.id
	ev.Silent = ev.Silent || r.status == FindingAccepted
	if !complete {
		if r.stale {
			return nil
		}
		_, err := it.exec(ctx, `UPDATE inv_findings SET stale = 1 WHERE id = ?`, r.id)
		return err
	}
	ev.Kind, ev.Summary = EvFindingResolved, fmt.Sprintf("finding %d on %s:%d not observed by completed run %d", r.id, base.Host, base.Port, runID)
	seq, err := it.event(ctx, ev)
	if err != nil {
		return err
	}
	_, err = it.exec(ctx, `UPDATE inv_findings SET status = ?, stale = 0, resolved_at = ?, resolved_run = ?, resolution = ?,
		accept_state = '', changed_seq = ? WHERE id = ?`, FindingResolved, it.now, runID, "not observed", seq, r.id)
	return err
}

// unseenService handles a covered service the run did not observe.
func (it *invTx) unseenService(ctx context.Context, svcID, runID int64, complete bool) (closed, staled int, err error) {
	var host, state, owner, tags string
	var port int
	var snoozed sql.NullTime
	if err := it.row(ctx, `SELECT host, port, state, owner, tags, snoozed_until FROM inv_services WHERE id = ?`, svcID).
		Scan(&host, &port, &state, &owner, &tags, &snoozed); err != nil {
		return 0, 0, err
	}
	base := Event{Host: host, Port: port, RunID: formatID(runID), ServiceID: svcID, Owner: owner, Tags: tags,
		Silent: snoozed.Valid && snoozed.Time.After(it.now)}
	rows, err := it.tx.QueryContext(ctx, it.s.d.rebind(`SELECT id, fp, status, stale, accept_state FROM inv_findings
		WHERE service_id = ? AND status <> ?`), svcID, FindingResolved)
	if err != nil {
		return 0, 0, err
	}
	var fs []invFindRow
	for rows.Next() {
		var r invFindRow
		var stale int
		if err := rows.Scan(&r.id, &r.fp, &r.status, &stale, &r.acceptState); err != nil {
			rows.Close()
			return 0, 0, err
		}
		r.stale = stale != 0
		fs = append(fs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	for _, r := range fs {
		if err := it.unseenFinding(ctx, r, runID, complete, base, svcID); err != nil {
			return 0, 0, err
		}
		if complete {
			closed++
		} else if !r.stale {
			staled++
		}
	}
	if complete && state == StateOnline {
		ev := base
		ev.Kind, ev.Summary = EvServiceNotObserved, fmt.Sprintf("%s did not answer completed run %d", joinHostPort(host, port), runID)
		if _, err := it.event(ctx, ev); err != nil {
			return 0, 0, err
		}
		if _, err := it.exec(ctx, `UPDATE inv_services SET state = ?, state_since = ? WHERE id = ?`, StateOffline, it.now, svcID); err != nil {
			return 0, 0, err
		}
	}
	return closed, staled, it.touchService(ctx, svcID)
}

// recount refreshes the pre-computed counts the dashboard reads.
func (it *invTx) recount(ctx context.Context) error {
	counts := map[string]int64{}
	for _, st := range []string{StateOnline, StateOffline, StateStale, StateExpired} {
		counts["services.state."+st] = 0
	}
	for _, q := range []struct{ sql, prefix string }{
		{`SELECT state, COUNT(*) FROM inv_services GROUP BY state`, "services.state."},
		{`SELECT risk, COUNT(*) FROM inv_services WHERE state <> 'expired' GROUP BY risk`, "services.risk."},
		{`SELECT status || '.' || severity, COUNT(*) FROM inv_findings GROUP BY status, severity`, "findings."},
	} {
		rows, err := it.tx.QueryContext(ctx, q.sql)
		if err != nil {
			return err
		}
		for rows.Next() {
			var k string
			var n int64
			if err := rows.Scan(&k, &n); err != nil {
				rows.Close()
				return err
			}
			counts[q.prefix+k] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	if _, err := it.exec(ctx, `DELETE FROM inv_counts WHERE name LIKE 'services.%' OR name LIKE 'findings.%'`); err != nil {
		return err
	}
	day := it.now.Format("2006-01-02")
	var openTotal int64
	for k, n := range counts {
		if strings.HasPrefix(k, "findings.open.") || strings.HasPrefix(k, "findings.acknowledged.") {
			openTotal += n
		}
		if _, err := it.exec(ctx, `INSERT INTO inv_counts (name, n) VALUES (?, ?)`, k, n); err != nil {
			return err
		}
	}
	// One trend point per day: open findings and online services.
	for k, n := range map[string]int64{"trend." + day + ".open_findings": openTotal, "trend." + day + ".online": counts["services.state.online"]} {
		if _, err := it.exec(ctx, `INSERT INTO inv_counts (name, n) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET n = excluded.n`, k, n); err != nil {
			return err
		}
	}
	return nil
}

// addCount moves a pre-computed count by delta (workflow changes).
func (it *invTx) addCount(ctx context.Context, name string, delta int64) error {
	_, err := it.exec(ctx, `INSERT INTO inv_counts (name, n) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET n = inv_counts.n + excluded.n`, name, delta)
	return err
}

type diffEvent struct {
	Kind, Summary string
	Detail        json.RawMessage
}

// diffService lists the timeline events between two observations.
func diffService(old, cur *service.Service) []diffEvent {
	var out []diffEvent
	mk := func(kind, summary string, detail any) {
		d, _ := json.Marshal(detail)
		out = append(out, diffEvent{kind, summary, d})
	}
	if old.Version != cur.Version || old.Product != cur.Product {
		mk(EvServiceVersion, fmt.Sprintf("%s %s → %s %s", orDash(old.Product), orDash(old.Version), orDash(cur.Product), orDash(cur.Version)),
			map[string]string{"from": old.Product + " " + old.Version, "to": cur.Product + " " + cur.Version})
	}
	if old.Auth != cur.Auth {
		switch {
		case cur.Auth == service.AuthNone:
			mk(EvAuthDropped, fmt.Sprintf("authentication dropped on %s (was %s)", cur.Key(), old.Auth), map[string]string{"from": string(old.Auth), "to": string(cur.Auth)})
		case cur.Auth == service.AuthRequired:
			mk(EvAuthAdded, fmt.Sprintf("authentication now required on %s", cur.Key()), map[string]string{"from": string(old.Auth), "to": string(cur.Auth)})
		}
	}
	om := map[string]service.Model{}
	for _, m := range old.Models {
		om[m.Name] = m
	}
	cm := map[string]service.Model{}
	for _, m := range cur.Models {
		cm[m.Name] = m
	}
	for _, m := range cur.Models {
		o, ok := om[m.Name]
		switch {
		case !ok:
			mk(EvModelAdded, "model added: "+m.Name, map[string]any{"model": m.Name, "digest": m.Digest, "categories": m.SystemPromptCategories})
		case o.SystemPrompt != m.SystemPrompt:
			mk(EvPromptChanged, "system prompt changed on "+m.Name, map[string]any{"model": m.Name, "categories": m.SystemPromptCategories,
				"before_categories": o.SystemPromptCategories})
		}
	}
	for _, m := range old.Models {
		if _, ok := cm[m.Name]; !ok {
			mk(EvModelRemoved, "model removed: "+m.Name, map[string]string{"model": m.Name})
		}
	}
	return out
}

func modelNames(ms []service.Model) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Name)
	}
	slices.Sort(out)
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
