package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

// MaxPage is the most rows one list call returns, whatever is asked.
const MaxPage = 200

// MaxOffset is the deepest page Offset reaches; deeper pages are read with
// the After cursor (keyset paging: every page costs the same).
const MaxOffset = 10000

// Page selects a slice of a list. Limit is capped at MaxPage; 0 means 50.
// After, when set, is the cursor of the last row of the previous page
// (ServiceCursor, FindingCursor) and Offset is ignored.
type Page struct {
	Limit  int
	Offset int
	After  string
}

func (p Page) norm() Page {
	if p.Limit <= 0 {
		p.Limit = 50
	}
	p.Limit = min(p.Limit, MaxPage)
	p.Offset = max(p.Offset, 0)
	return p
}

// ServiceQuery filters and sorts inventory services.
type ServiceQuery struct {
	State   string // "" = all but expired; "all" = every state
	Product string
	MinRisk service.Severity
	Auth    string
	Owner   string
	Tag     string
	// Search matches host, hostname, product, version (substring).
	Search string
	// Sort: "risk" (default), "last_seen", "first_seen", "host".
	Sort string
	Page Page
}

const invServiceCols = `id, fp, host, port, hostname, product, version, auth, tls, risk, model_count, open_findings, state, state_since,
	first_seen, last_seen, first_run, last_run, snoozed_until, owner, tags, changed_seq`

func scanInvService(sc interface{ Scan(...any) error }) (InvService, error) {
	var (
		v             InvService
		tls           int
		first, last   int64
		snoozed       sql.NullTime
		since, fs, ls time.Time
	)
	err := sc.Scan(&v.ID, &v.FP, &v.Host, &v.Port, &v.Hostname, &v.Product, &v.Version, &v.Auth, &tls, &v.Risk, &v.Models,
		&v.OpenFindings, &v.State, &since, &fs, &ls, &first, &last, &snoozed, &v.Owner, &v.Tags, &v.ChangedSeq)
	v.TLS = tls != 0
	v.StateSince, v.FirstSeen, v.LastSeen = since.UTC(), fs.UTC(), ls.UTC()
	v.FirstRun, v.LastRun = formatID(first), formatID(last)
	v.SnoozedUntil = nullTime(snoozed)
	return v, err
}

// ListServices returns one page of inventory services and whether more
// follow.
func (s *sqlStore) ListServices(ctx context.Context, q ServiceQuery) ([]InvService, bool, error) {
	where, args := []string{"1 = 1"}, []any{}
	switch q.State {
	case "":
		where = append(where, "state <> 'expired'")
	case "all":
	case StateOnline, StateOffline, StateStale, StateExpired:
		where = append(where, "state = ?")
		args = append(args, q.State)
	default:
		return nil, false, fmt.Errorf("state %q: want online, offline, stale, expired or all: %w", q.State, ErrBadInput)
	}
	if q.Product != "" {
		where, args = append(where, "product = ?"), append(args, strings.ToLower(q.Product))
	}
	if q.MinRisk != "" {
		where, args = append(where, "risk_rank >= ?"), append(args, q.MinRisk.Rank())
	}
	if q.Auth != "" {
		where, args = append(where, "auth = ?"), append(args, q.Auth)
	}
	if q.Owner != "" {
		where, args = append(where, "owner = ?"), append(args, q.Owner)
	}
	if q.Tag != "" {
		where, args = append(where, "(',' || tags || ',') LIKE ?"), append(args, "%,"+likeEscape(q.Tag)+",%")
	}
	if q.Search != "" {
		p := "%" + likeEscape(strings.ToLower(q.Search)) + "%"
		where = append(where, "(host LIKE ? OR LOWER(hostname) LIKE ? OR product LIKE ? OR version LIKE ?)")
		args = append(args, p, p, p, p)
	}
	order, key, cmp := "risk_rank DESC, id DESC", "(risk_rank, id)", "<"
	switch q.Sort {
	case "", "risk":
	case "last_seen":
		order, key = "last_seen DESC, id DESC", "(last_seen, id)"
	case "first_seen":
		order, key = "first_seen DESC, id DESC", "(first_seen, id)"
	case "host":
		order, key, cmp = "host, port", "(host, port)", ">"
	default:
		return nil, false, fmt.Errorf("sort %q: want risk, last_seen, first_seen or host: %w", q.Sort, ErrBadInput)
	}
	pg := q.Page.norm()
	if pg.After != "" {
		a, b, err := parseCursor(q.Sort, pg.After)
		if err != nil {
			return nil, false, err
		}
		where, args = append(where, key+" "+cmp+" (?, ?)"), append(args, a, b)
		pg.Offset = 0
	} else if pg.Offset > MaxOffset {
		return nil, false, fmt.Errorf("offset %d is past %d: page on with the after cursor: %w", pg.Offset, MaxOffset, ErrBadInput)
	}
	args = append(args, pg.Limit+1, pg.Offset)
	rows, err := s.db.QueryContext(ctx, s.d.rebind("SELECT "+invServiceCols+" FROM inv_services WHERE "+strings.Join(where, " AND ")+
		" ORDER BY "+order+" LIMIT ? OFFSET ?"), args...)
	if err != nil {
		return nil, false, s.errf(err, "list inventory services")
	}
	defer rows.Close()
	out := []InvService{}
	for rows.Next() {
		v, err := scanInvService(rows)
		if err != nil {
			return nil, false, s.errf(err, "list inventory services")
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, false, s.errf(err, "list inventory services")
	}
	more := len(out) > pg.Limit
	if more {
		out = out[:pg.Limit]
	}
	return out, more, nil
}

func likeEscape(s string) string {
	return strings.NewReplacer("%", "", "_", "").Replace(s)
}

// GetService returns one inventory service and its latest document.
func (s *sqlStore) GetService(ctx context.Context, id int64) (InvService, service.Service, error) {
	var doc string
	row := s.db.QueryRowContext(ctx, s.d.rebind("SELECT "+invServiceCols+", doc FROM inv_services WHERE id = ?"), id)
	var v InvService
	var (
		tls           int
		first, last   int64
		snoozed       sql.NullTime
		since, fs, ls time.Time
	)
	err := row.Scan(&v.ID, &v.FP, &v.Host, &v.Port, &v.Hostname, &v.Product, &v.Version, &v.Auth, &tls, &v.Risk, &v.Models,
		&v.OpenFindings, &v.State, &since, &fs, &ls, &first, &last, &snoozed, &v.Owner, &v.Tags, &v.ChangedSeq, &doc)
	if errors.Is(err, sql.ErrNoRows) {
		return v, service.Service{}, fmt.Errorf("no service %d in the inventory: %w", id, ErrNotFound)
	}
	if err != nil {
		return v, service.Service{}, s.errf(err, "read inventory service %d", id)
	}
	v.TLS = tls != 0
	v.StateSince, v.FirstSeen, v.LastSeen = since.UTC(), fs.UTC(), ls.UTC()
	v.FirstRun, v.LastRun = formatID(first), formatID(last)
	v.SnoozedUntil = nullTime(snoozed)
	var sv service.Service
	_ = json.Unmarshal([]byte(doc), &sv)
	return v, sv, nil
}

// FindingQuery filters inventory findings.
type FindingQuery struct {
	// Status: "" = open and acknowledged; "all"; or one status.
	Status      string
	MinSeverity service.Severity
	FindingID   string
	ServiceID   int64
	Owner       string
	Tag         string
	// AcceptState "requested" lists acceptances awaiting approval.
	AcceptState string
	Page        Page
}

const invFindingCols = `id, fp, service_id, host, port, product, finding_id, severity, title, detail, status, stale, first_seen, last_seen,
	opened_at, resolved_at, resolution, sla_due, sla_breached, ack_by, accept_state, accept_reason, accept_until, accept_requested_by,
	accept_approved_by, owner, tags, changed_seq`

func scanInvFinding(sc interface{ Scan(...any) error }) (InvFinding, error) {
	var (
		f                          InvFinding
		stale, breached            int
		fs, ls, opened             time.Time
		resolved, due, acceptUntil sql.NullTime
	)
	err := sc.Scan(&f.ID, &f.FP, &f.ServiceID, &f.Host, &f.Port, &f.Product, &f.FindingID, &f.Severity, &f.Title, &f.Detail, &f.Status,
		&stale, &fs, &ls, &opened, &resolved, &f.Resolution, &due, &breached, &f.AckBy, &f.AcceptState, &f.AcceptReason, &acceptUntil,
		&f.AcceptRequestedBy, &f.AcceptApprovedBy, &f.Owner, &f.Tags, &f.ChangedSeq)
	f.Stale, f.SLABreached = stale != 0, breached != 0
	f.FirstSeen, f.LastSeen, f.OpenedAt = fs.UTC(), ls.UTC(), opened.UTC()
	f.ResolvedAt, f.SLADue, f.AcceptUntil = nullTime(resolved), nullTime(due), nullTime(acceptUntil)
	return f, err
}

// ListFindings returns one page of inventory findings, most severe first.
func (s *sqlStore) ListFindings(ctx context.Context, q FindingQuery) ([]InvFinding, bool, error) {
	where, args := []string{"1 = 1"}, []any{}
	switch q.Status {
	case "":
		where = append(where, "status IN ('open', 'acknowledged')")
	case "all":
	case FindingOpen, FindingAcknowledged, FindingAccepted, FindingResolved:
		where, args = append(where, "status = ?"), append(args, q.Status)
	default:
		return nil, false, fmt.Errorf("status %q: want open, acknowledged, accepted, resolved or all: %w", q.Status, ErrBadInput)
	}
	if q.MinSeverity != "" {
		where, args = append(where, "severity_rank >= ?"), append(args, q.MinSeverity.Rank())
	}
	if q.FindingID != "" {
		where, args = append(where, "finding_id = ?"), append(args, strings.ToUpper(q.FindingID))
	}
	if q.ServiceID > 0 {
		where, args = append(where, "service_id = ?"), append(args, q.ServiceID)
	}
	if q.Owner != "" {
		where, args = append(where, "owner = ?"), append(args, q.Owner)
	}
	if q.Tag != "" {
		where, args = append(where, "(',' || tags || ',') LIKE ?"), append(args, "%,"+likeEscape(q.Tag)+",%")
	}
	if q.AcceptState != "" {
		where, args = append(where, "accept_state = ?"), append(args, q.AcceptState)
	}
	pg := q.Page.norm()
	if pg.After != "" {
		a, b, err := parseCursor("finding", pg.After)
		if err != nil {
			return nil, false, err
		}
		where, args = append(where, "(severity_rank, id) < (?, ?)"), append(args, a, b)
		pg.Offset = 0
	} else if pg.Offset > MaxOffset {
		return nil, false, fmt.Errorf("offset %d is past %d: page on with the after cursor: %w", pg.Offset, MaxOffset, ErrBadInput)
	}
	args = append(args, pg.Limit+1, pg.Offset)
	rows, err := s.db.QueryContext(ctx, s.d.rebind("SELECT "+invFindingCols+" FROM inv_findings WHERE "+strings.Join(where, " AND ")+
		" ORDER BY severity_rank DESC, id DESC LIMIT ? OFFSET ?"), args...)
	if err != nil {
		return nil, false, s.errf(err, "list findings")
	}
	defer rows.Close()
	out := []InvFinding{}
	for rows.Next() {
		f, err := scanInvFinding(rows)
		if err != nil {
			return nil, false, s.errf(err, "list findings")
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, false, s.errf(err, "list findings")
	}
	more := len(out) > pg.Limit
	if more {
		out = out[:pg.Limit]
	}
	return out, more, nil
}

// GetFinding returns one inventory finding.
func (s *sqlStore) GetFinding(ctx context.Context, id int64) (InvFinding, error) {
	f, err := scanInvFinding(s.db.QueryRowContext(ctx, s.d.rebind("SELECT "+invFindingCols+" FROM inv_findings WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return f, fmt.Errorf("no finding %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return f, s.errf(err, "read finding %d", id)
	}
	return f, nil
}

// Events lists events after cursor (the change feed), or of one service
// (its timeline) when serviceID > 0, oldest first for the feed and newest
// first for a timeline. It returns the cursor to ask from next.
func (s *sqlStore) Events(ctx context.Context, cursor int64, serviceID int64, limit int) ([]Event, int64, error) {
	limit = Page{Limit: limit}.norm().Limit
	q := `SELECT seq, at, kind, service_id, finding_id, run_id, host, port, actor, severity, summary, detail FROM inv_events WHERE seq > ?`
	args := []any{cursor}
	order := " ORDER BY seq LIMIT ?"
	if serviceID > 0 {
		q += " AND service_id = ?"
		args = append(args, serviceID)
		order = " ORDER BY seq DESC LIMIT ?"
	}
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q+order), args...)
	if err != nil {
		return nil, cursor, s.errf(err, "read the change feed")
	}
	defer rows.Close()
	out := []Event{}
	next := cursor
	for rows.Next() {
		var (
			e      Event
			run    int64
			detail string
		)
		if err := rows.Scan(&e.Seq, &e.At, &e.Kind, &e.ServiceID, &e.FindingID, &run, &e.Host, &e.Port, &e.Actor, &e.Severity,
			&e.Summary, &detail); err != nil {
			return nil, cursor, s.errf(err, "read the change feed")
		}
		e.At = e.At.UTC()
		if run > 0 {
			e.RunID = formatID(run)
		}
		if detail != "" && json.Valid([]byte(detail)) {
			e.Detail = json.RawMessage(detail)
		}
		next = max(next, e.Seq)
		out = append(out, e)
	}
	return out, next, rows.Err()
}

// Counts returns the pre-computed counts (name → n).
func (s *sqlStore) Counts(ctx context.Context) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, n FROM inv_counts`)
	if err != nil {
		return nil, s.errf(err, "read counts")
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return nil, s.errf(err, "read counts")
		}
		out[k] = n
	}
	return out, rows.Err()
}

// FindingByFP returns the finding with a fingerprint.
func (s *sqlStore) FindingByFP(ctx context.Context, fp string) (InvFinding, error) {
	f, err := scanInvFinding(s.db.QueryRowContext(ctx, s.d.rebind("SELECT "+invFindingCols+" FROM inv_findings WHERE fp = ?"), strings.TrimSpace(fp)))
	if errors.Is(err, sql.ErrNoRows) {
		return f, fmt.Errorf("no finding with fingerprint %q: %w", fp, ErrNotFound)
	}
	if err != nil {
		return f, s.errf(err, "read a finding")
	}
	return f, nil
}

// Recount recomputes the pre-computed counts from the tables (after a bulk
// load, or to repair them).
func (s *sqlStore) Recount(ctx context.Context) error {
	_, err := s.inventoryWrite(ctx, nil, func(it *invTx) error { return it.recount(ctx) })
	if err != nil {
		return s.errf(err, "recount the inventory")
	}
	return nil
}

// ServiceCursor is the After cursor that continues a service list sorted
// by sort after v.
func ServiceCursor(sort string, v InvService) string {
	switch sort {
	case "last_seen":
		return "t" + strconv.FormatInt(v.LastSeen.UnixMicro(), 10) + "." + strconv.FormatInt(v.ID, 10)
	case "first_seen":
		return "t" + strconv.FormatInt(v.FirstSeen.UnixMicro(), 10) + "." + strconv.FormatInt(v.ID, 10)
	case "host":
		return "h" + strconv.Itoa(v.Port) + "." + v.Host
	}
	return "r" + strconv.Itoa(service.Severity(v.Risk).Rank()) + "." + strconv.FormatInt(v.ID, 10)
}

// FindingCursor is the After cursor that continues a finding list after f.
func FindingCursor(f InvFinding) string {
	return "r" + strconv.Itoa(service.Severity(f.Severity).Rank()) + "." + strconv.FormatInt(f.ID, 10)
}

// parseCursor decodes a cursor into the two values of the sort key.
func parseCursor(sort, c string) (any, any, error) {
	bad := fmt.Errorf("cursor %q does not continue this list: %w", c, ErrBadInput)
	if len(c) < 3 || len(c) > 300 {
		return nil, nil, bad
	}
	a, b, ok := strings.Cut(c[1:], ".")
	if !ok {
		return nil, nil, bad
	}
	switch c[0] {
	case 'r':
		if sort != "" && sort != "risk" && sort != "finding" {
			return nil, nil, bad
		}
		r, err1 := strconv.Atoi(a)
		id, err2 := strconv.ParseInt(b, 10, 64)
		if err1 != nil || err2 != nil {
			return nil, nil, bad
		}
		return r, id, nil
	case 't':
		if sort != "last_seen" && sort != "first_seen" {
			return nil, nil, bad
		}
		us, err1 := strconv.ParseInt(a, 10, 64)
		id, err2 := strconv.ParseInt(b, 10, 64)
		if err1 != nil || err2 != nil {
			return nil, nil, bad
		}
		return dbTime(time.UnixMicro(us)), id, nil
	case 'h':
		if sort != "host" {
			return nil, nil, bad
		}
		port, err := strconv.Atoi(a)
		if err != nil {
			return nil, nil, bad
		}
		return b, port, nil
	}
	return nil, nil, bad
}
