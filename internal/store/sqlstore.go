package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llmfence/llmfence/internal/credential"
	"github.com/llmfence/llmfence/internal/service"
)

// dialect holds everything that differs between the back ends at run time.
// The SQL itself is written once, with '?' placeholders.
type dialect struct {
	kind Kind
	// dollar: rewrite '?' placeholders to $1, $2, … (PostgreSQL).
	dollar bool
	// migrationsTable creates schema_migrations if missing.
	migrationsTable string
	// migrationLock, if set, runs first in the migration transaction.
	migrationLock string
}

var (
	sqliteDialect = &dialect{
		kind: KindSQLite,
		migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMP NOT NULL)`,
	}
	postgresDialect = &dialect{
		kind:   KindPostgres,
		dollar: true,
		migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)`,
		// Serialise concurrent first opens (two scanners starting at once).
		migrationLock: `SELECT pg_advisory_xact_lock(7405896417356231011)`,
	}
)

// rebind rewrites '?' placeholders for the dialect. The store's SQL never
// contains '?' inside string literals.
func (d *dialect) rebind(q string) string {
	if !d.dollar {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// sqlStore implements Store over database/sql for both dialects.
type sqlStore struct {
	db    *sql.DB
	d     *dialect
	where string // the database as users know it, for messages: a path or host:port
	log   *slog.Logger
	now   func() time.Time
	// writeMu serialises write transactions (SQLite allows one writer;
	// queueing here beats spinning in busy_timeout). nil for PostgreSQL.
	writeMu *sync.Mutex

	// stmtMu guards statements prepared once and reused by every write
	// transaction (tx.StmtContext): the audit log inserts on every request.
	stmtMu    sync.Mutex
	usageStmt *sql.Stmt
}

// prepared returns *cached, preparing query the first time.
func (s *sqlStore) prepared(ctx context.Context, cached **sql.Stmt, query string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if *cached == nil {
		st, err := s.db.PrepareContext(ctx, query)
		if err != nil {
			return nil, err
		}
		*cached = st
	}
	return *cached, nil
}

func newSQLStore(db *sql.DB, d *dialect, where string, opts Options, serialWrites bool) *sqlStore {
	s := &sqlStore{db: db, d: d, where: where, log: opts.Logger, now: opts.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if serialWrites {
		s.writeMu = &sync.Mutex{}
	}
	return s
}

// clock returns the current time as stored: UTC, microsecond precision
// (PostgreSQL's), so both back ends round-trip the same value.
func (s *sqlStore) clock() time.Time { return dbTime(s.now()) }

func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func (s *sqlStore) Close() error {
	s.stmtMu.Lock()
	if s.usageStmt != nil {
		s.usageStmt.Close()
		s.usageStmt = nil
	}
	s.stmtMu.Unlock()
	return s.db.Close()
}

func (s *sqlStore) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.writeMu != nil {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// queryer is what *sql.DB and *sql.Tx share.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// ---- runs ----

func (s *sqlStore) CreateRun(ctx context.Context, r Run) (Run, error) {
	var out Run
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.createRunTx(ctx, tx, r)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrBadInput) {
			return Run{}, err
		}
		return Run{}, s.errf(err, "record a new scan run")
	}
	return out, nil
}

// createRunTx records a new run inside tx.
func (s *sqlStore) createRunTx(ctx context.Context, tx *sql.Tx, r Run) (Run, error) {
	out := Run{
		StartedAt:   s.clock(),
		Status:      StatusRunning,
		Targets:     redactTargets(nonNil(r.Targets)),
		Ports:       clean(r.Ports),
		Args:        credential.Args(r.Args),
		ToolVersion: clean(r.ToolVersion),
		OwnerHost:   clean(r.OwnerHost),
		OwnerPID:    r.OwnerPID,
		ScopeKey:    clean(r.ScopeKey),
		Spec:        clean(r.Spec),
		Shards:      r.Shards,
		ScheduleID:  r.ScheduleID,
	}
	out.HeartbeatAt = out.StartedAt
	targets, _ := json.Marshal(out.Targets) // []string always marshals
	args, _ := json.Marshal(nonNil(out.Args))
	var schedID int64
	if out.ScheduleID != "" {
		v, err := strconv.ParseInt(out.ScheduleID, 10, 64)
		if err != nil || v <= 0 {
			return Run{}, fmt.Errorf("record a new scan run: schedule %q is not a schedule ID: %w", out.ScheduleID, ErrBadInput)
		}
		schedID = v
	}
	return s.insertRun(ctx, tx, out, string(targets), string(args), schedID)
}

func (s *sqlStore) insertRun(ctx context.Context, tx *sql.Tx, out Run, targets, args string, schedID int64) (Run, error) {
	var id int64
	err := tx.QueryRowContext(ctx, s.d.rebind(`INSERT INTO runs
		(started_at, status, error, targets, ports, args, tool_version, addresses_probed, open_ports,
		 heartbeat_at, owner_host, owner_pid, scope_key, spec, shards, schedule_id)
		VALUES (?, ?, '', ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		out.StartedAt, string(out.Status), targets, out.Ports, args, out.ToolVersion,
		out.HeartbeatAt, out.OwnerHost, out.OwnerPID, out.ScopeKey, out.Spec, out.Shards, schedID).Scan(&id)
	out.ID = formatID(id)
	return out, err
}

func (s *sqlStore) FinishRun(ctx context.Context, runID string, stats RunStats) error {
	return s.EndRun(ctx, runID, StatusFinished, "", stats)
}

func (s *sqlStore) EndRun(ctx context.Context, runID string, status RunStatus, reason string, stats RunStats) error {
	switch status {
	case StatusFinished, StatusFailed, StatusInterrupted:
	default:
		return fmt.Errorf("end scan run %s: status %q is not finished, failed or interrupted: %w", runID, status, ErrBadInput)
	}
	id, err := parseID(runID)
	if err != nil {
		return err
	}
	var n int64
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE runs SET status = ?, finished_at = ?, error = ?,
			addresses_probed = ?, open_ports = ? WHERE id = ? AND status = ?`),
			string(status), s.clock(), clean(credential.Text(reason)), stats.AddressesProbed, stats.OpenPorts, id,
			string(StatusRunning))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		if err != nil || n > 0 {
			return err
		}
		var cur string
		err = tx.QueryRowContext(ctx, s.d.rebind("SELECT status FROM runs WHERE id = ?"), id).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("end scan run %s: no such run: %w", runID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("end scan run %s: it is already %s: %w", runID, cur, ErrRunEnded)
	})
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrRunEnded) {
		return err
	}
	if err != nil {
		return s.errf(err, "end scan run %s", runID)
	}
	return nil
}

const runColumns = `id, started_at, finished_at, status, error, targets, ports, args, tool_version, addresses_probed, open_ports,
	heartbeat_at, owner_host, owner_pid, scope_key, spec, shards, schedule_id`

func scanRun(sc interface{ Scan(...any) error }) (Run, error) {
	var (
		r                     Run
		id                    int64
		started               time.Time
		finished, heartbeat   sql.NullTime
		status, targets, args string
		schedID               int64
	)
	if err := sc.Scan(&id, &started, &finished, &status, &r.Error, &targets, &r.Ports, &args,
		&r.ToolVersion, &r.Stats.AddressesProbed, &r.Stats.OpenPorts,
		&heartbeat, &r.OwnerHost, &r.OwnerPID, &r.ScopeKey, &r.Spec, &r.Shards, &schedID); err != nil {
		return Run{}, err
	}
	if heartbeat.Valid {
		r.HeartbeatAt = heartbeat.Time.UTC()
	}
	if schedID > 0 {
		r.ScheduleID = formatID(schedID)
	}
	// Runs recorded before redaction existed may hold credentials.
	r.Error = credential.Text(r.Error)
	r.ID = formatID(id)
	r.StartedAt = started.UTC()
	if finished.Valid {
		r.FinishedAt = finished.Time.UTC()
	}
	r.Status = RunStatus(status)
	if err := json.Unmarshal([]byte(targets), &r.Targets); err != nil {
		return Run{}, fmt.Errorf("run %d: targets: %w", id, err)
	}
	if err := json.Unmarshal([]byte(args), &r.Args); err != nil {
		return Run{}, fmt.Errorf("run %d: args: %w", id, err)
	}
	if len(r.Args) == 0 {
		r.Args = nil
	}
	r.Args = credential.Args(r.Args)
	r.Targets = redactTargets(r.Targets)
	return r, nil
}

func (s *sqlStore) Runs(ctx context.Context, limit int) ([]Run, error) {
	q := "SELECT " + runColumns + " FROM runs ORDER BY id DESC"
	var args []any
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, s.errf(err, "list scan runs")
	}
	var runs []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			rows.Close()
			return nil, s.errf(err, "list scan runs")
		}
		runs = append(runs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.errf(err, "list scan runs")
	}
	if err := s.fillCounts(ctx, runs); err != nil {
		return nil, s.errf(err, "list scan runs")
	}
	return runs, nil
}

// fillCounts computes Stats.Services and Stats.ByRisk from the services
// table for runs (sorted by descending ID).
func (s *sqlStore) fillCounts(ctx context.Context, runs []Run) error {
	if len(runs) == 0 {
		return nil
	}
	hi, _ := parseID(runs[0].ID)
	lo, _ := parseID(runs[len(runs)-1].ID)
	idx := make(map[string]int, len(runs))
	for i := range runs {
		idx[runs[i].ID] = i
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT run_id, risk, COUNT(*) FROM services
		WHERE run_id >= ? AND run_id <= ? GROUP BY run_id, risk`), lo, hi)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id   int64
			risk string
			n    int
		)
		if err := rows.Scan(&id, &risk, &n); err != nil {
			return err
		}
		i, ok := idx[formatID(id)]
		if !ok {
			continue
		}
		st := &runs[i].Stats
		if st.ByRisk == nil {
			st.ByRisk = map[service.Severity]int{}
		}
		st.ByRisk[service.Severity(risk)] += n
		st.Services += n
	}
	return rows.Err()
}

func (s *sqlStore) GetRun(ctx context.Context, ref string) (Run, error) {
	id, err := s.resolve(ctx, s.db, ref)
	if err != nil {
		return Run{}, err
	}
	r, err := scanRun(s.db.QueryRowContext(ctx, s.d.rebind("SELECT "+runColumns+" FROM runs WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, fmt.Errorf("no scan run %s: %w", ref, ErrNotFound)
	}
	if err != nil {
		return Run{}, s.errf(err, "read scan run %s", ref)
	}
	runs := []Run{r}
	if err := s.fillCounts(ctx, runs); err != nil {
		return Run{}, s.errf(err, "read scan run %s", ref)
	}
	return runs[0], nil
}

// ResolveRef parses a run reference without a database: it returns the run
// ID for a numeric reference ("42", "#42"), or ok=false with the lower-cased
// keyword for RefLatest / RefPrevious. Anything else is ErrBadInput.
func ResolveRef(ref string) (id int64, keyword string, err error) {
	r := strings.ToLower(strings.TrimSpace(ref))
	switch r {
	case RefLatest, RefPrevious:
		return 0, r, nil
	case "":
		return 0, "", fmt.Errorf("empty run reference: want a run ID, %q or %q: %w", RefLatest, RefPrevious, ErrBadInput)
	}
	id, err = strconv.ParseInt(strings.TrimPrefix(r, "#"), 10, 64)
	if err != nil || id <= 0 {
		return 0, "", fmt.Errorf("run reference %q: want a run ID (a number), %q or %q: %w", ref, RefLatest, RefPrevious, ErrBadInput)
	}
	return id, "", nil
}

func (s *sqlStore) resolve(ctx context.Context, q queryer, ref string) (int64, error) {
	id, kw, err := ResolveRef(ref)
	if err != nil {
		return 0, err
	}
	if kw == "" {
		var got int64
		err := q.QueryRowContext(ctx, s.d.rebind("SELECT id FROM runs WHERE id = ?"), id).Scan(&got)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("no scan run %d (see `llmfence runs`): %w", id, ErrNotFound)
		}
		if err != nil {
			return 0, s.errf(err, "look up scan run %d", id)
		}
		return got, nil
	}
	var scope, targets, ports string
	err = q.QueryRowContext(ctx, s.d.rebind(`SELECT id, scope_key, targets, ports FROM runs WHERE status = ? ORDER BY id DESC LIMIT 1`),
		string(StatusFinished)).Scan(&id, &scope, &targets, &ports)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("no finished scan run yet (run `llmfence scan` first): %w", ErrNotFound)
	case err != nil:
		return 0, s.errf(err, "look up the %s scan run", kw)
	}
	if kw == RefLatest {
		return id, nil
	}
	return s.previousSameScope(ctx, q, id, scope, targets, ports)
}

// previousSameScope finds the newest finished run before run latest that
// covered the same scope: the same scope key, or, for runs recorded
// without one, the same targets and ports as written. RefPrevious means
// this run, so `diff` and `findings --run previous` never compare scans of
// unrelated targets.
func (s *sqlStore) previousSameScope(ctx context.Context, q queryer, latest int64, scope, targets, ports string) (int64, error) {
	var (
		id  int64
		err error
	)
	if scope != "" {
		err = q.QueryRowContext(ctx, s.d.rebind(`SELECT id FROM runs WHERE status = ? AND id < ? AND scope_key = ?
			ORDER BY id DESC LIMIT 1`), string(StatusFinished), latest, scope).Scan(&id)
	} else {
		err = q.QueryRowContext(ctx, s.d.rebind(`SELECT id FROM runs WHERE status = ? AND id < ? AND scope_key = '' AND targets = ? AND ports = ?
			ORDER BY id DESC LIMIT 1`), string(StatusFinished), latest, targets, ports).Scan(&id)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("no earlier finished run over the same targets and ports as the latest, run %d (compare two runs by ID: llmfence diff RUN_A RUN_B): %w",
			latest, ErrNotFound)
	case err != nil:
		return 0, s.errf(err, "look up the previous scan run")
	}
	return id, nil
}

// ---- services ----

type serviceRow struct {
	svc      service.Service
	doc      string
	seen     time.Time
	topFind  string
	findings []service.Finding
}

func (s *sqlStore) SaveServices(ctx context.Context, runID string, svcs []service.Service) error {
	id, err := parseID(runID)
	if err != nil {
		return err
	}
	if len(svcs) == 0 {
		return nil
	}
	// Encode outside the write lock. Write in host, port order, keeping
	// the last record of a host:port given twice: concurrent batches then
	// take row locks in one order (no deadlocks on PostgreSQL).
	now := s.clock()
	svcs = slices.Clone(svcs)
	slices.Reverse(svcs) // so that the stable sort + compact keeps the last
	slices.SortStableFunc(svcs, func(a, b service.Service) int {
		return cmp.Or(strings.Compare(a.Host, b.Host), cmp.Compare(a.Port, b.Port))
	})
	svcs = slices.CompactFunc(svcs, func(a, b service.Service) bool { return a.Host == b.Host && a.Port == b.Port })
	rows := make([]serviceRow, len(svcs))
	for i, sv := range svcs {
		doc, err := json.Marshal(sv)
		if err != nil {
			return fmt.Errorf("save services of run %s: encode %s: %w", runID, sv.Key(), err)
		}
		seen := now
		if !sv.ScannedAt.IsZero() {
			seen = dbTime(sv.ScannedAt)
		}
		rows[i] = serviceRow{svc: sv, doc: string(doc), seen: seen, findings: sv.Findings, topFind: topFinding(sv.Findings)}
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		var status string
		err := tx.QueryRowContext(ctx, s.d.rebind("SELECT status FROM runs WHERE id = ?"), id).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("no scan run %s: %w", runID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		return s.saveRows(ctx, tx, id, rows)
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("save services: %w", err)
		}
		return s.errf(err, "save %d services of run %s", len(svcs), runID)
	}
	return nil
}

func (s *sqlStore) saveRows(ctx context.Context, tx *sql.Tx, runID int64, rows []serviceRow) error {
	prep := func(q string) (*sql.Stmt, error) { return tx.PrepareContext(ctx, s.d.rebind(q)) }
	// Upsert, not delete+insert: two transactions saving the same
	// host:port at once would both miss the row and then collide.
	ins, err := prep(`INSERT INTO services (run_id, host, port, hostname, product, version, auth, risk, risk_rank,
		model_count, finding_count, scanned_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (run_id, host, port) DO UPDATE SET
			hostname = excluded.hostname, product = excluded.product, version = excluded.version,
			auth = excluded.auth, risk = excluded.risk, risk_rank = excluded.risk_rank,
			model_count = excluded.model_count, finding_count = excluded.finding_count,
			scanned_at = excluded.scanned_at, doc = excluded.doc
		RETURNING id`)
	if err != nil {
		return err
	}
	defer ins.Close()
	delF, err := prep(`DELETE FROM findings WHERE service_id = ?`)
	if err != nil {
		return err
	}
	defer delF.Close()
	insF, err := prep(`INSERT INTO findings (service_id, run_id, host, port, finding_id, severity, severity_rank, title, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer insF.Close()
	// Host history: the newest observation wins the descriptive columns
	// (the WHERE keeps an older run saved late from overwriting them);
	// first_seen only ever moves earlier (second statement).
	upHost, err := prep(`INSERT INTO hosts (host, port, hostname, product, version, auth, risk, risk_rank, model_count,
		finding_count, top_finding, first_seen, last_seen, first_run, last_run, gateway)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (host, port) DO UPDATE SET
			hostname = CASE WHEN excluded.hostname <> '' THEN excluded.hostname ELSE hosts.hostname END,
			product = excluded.product, version = excluded.version, auth = excluded.auth, gateway = excluded.gateway,
			risk = excluded.risk, risk_rank = excluded.risk_rank, model_count = excluded.model_count,
			finding_count = excluded.finding_count, top_finding = excluded.top_finding,
			last_seen = excluded.last_seen, last_run = excluded.last_run
		WHERE excluded.last_seen >= hosts.last_seen`)
	if err != nil {
		return err
	}
	defer upHost.Close()
	firstHost, err := prep(`UPDATE hosts SET first_seen = ?, first_run = ? WHERE host = ? AND port = ? AND first_seen > ?`)
	if err != nil {
		return err
	}
	defer firstHost.Close()

	for _, r := range rows {
		sv := r.svc
		host, hostname := clean(sv.Host), clean(sv.Hostname)
		product, version, auth := clean(sv.Product), clean(sv.Version), clean(string(sv.Auth))
		risk := clean(string(sv.Risk))
		var svcID int64
		if err := ins.QueryRowContext(ctx, runID, host, sv.Port, hostname, product, version, auth, risk,
			sv.Risk.Rank(), len(sv.Models), len(sv.Findings), r.seen, r.doc).Scan(&svcID); err != nil {
			return err
		}
		if _, err := delF.ExecContext(ctx, svcID); err != nil {
			return err
		}
		for _, f := range r.findings {
			if _, err := insF.ExecContext(ctx, svcID, runID, host, sv.Port, clean(f.ID), clean(string(f.Severity)),
				f.Severity.Rank(), clean(f.Title), clean(f.Detail)); err != nil {
				return err
			}
		}
		if _, err := upHost.ExecContext(ctx, host, sv.Port, hostname, product, version, auth, risk, sv.Risk.Rank(),
			len(sv.Models), len(sv.Findings), clean(r.topFind), r.seen, r.seen, runID, runID, clean(sv.Gateway)); err != nil {
			return err
		}
		if _, err := firstHost.ExecContext(ctx, r.seen, runID, host, sv.Port, r.seen); err != nil {
			return err
		}
	}
	return nil
}

// topFinding is the ID of the most severe finding (lowest ID on ties).
func topFinding(fs []service.Finding) string {
	best := -1
	for i, f := range fs {
		if best < 0 || f.Severity.Rank() > fs[best].Severity.Rank() ||
			(f.Severity.Rank() == fs[best].Severity.Rank() && f.ID < fs[best].ID) {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return fs[best].ID
}

func (s *sqlStore) Services(ctx context.Context, runRef string) ([]service.Service, error) {
	id, err := s.resolve(ctx, s.db, runRef)
	if err != nil {
		return nil, err
	}
	out, err := s.services(ctx, id)
	if err != nil {
		return nil, s.errf(err, "read services of run %s", runRef)
	}
	return out, nil
}

func (s *sqlStore) services(ctx context.Context, runID int64) ([]service.Service, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind("SELECT doc FROM services WHERE run_id = ?"), runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []service.Service{}
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		var sv service.Service
		if err := json.Unmarshal([]byte(doc), &sv); err != nil {
			return nil, fmt.Errorf("decode a stored service: %w", err)
		}
		out = append(out, sv)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sortServices(out)
	return out, nil
}

// ---- hosts ----

func (s *sqlStore) Hosts(ctx context.Context, f HostFilter) ([]Host, error) {
	match, err := addressMatcher(f.Address)
	if err != nil {
		return nil, err
	}
	q := `SELECT host, port, hostname, product, version, auth, risk, model_count, finding_count, top_finding,
		first_seen, last_seen, first_run, last_run, gateway FROM hosts WHERE 1 = 1`
	var args []any
	if f.Product != "" {
		q += " AND LOWER(product) = ?"
		args = append(args, strings.ToLower(strings.TrimSpace(f.Product)))
	}
	if f.MinRisk != "" {
		sev, ok := service.ParseSeverity(string(f.MinRisk))
		if !ok {
			return nil, fmt.Errorf("minimum risk %q: want none, info, low, medium, high or critical: %w", f.MinRisk, ErrBadInput)
		}
		q += " AND risk_rank >= ?"
		args = append(args, sev.Rank())
	}
	if f.Auth != "" {
		q += " AND auth = ?"
		args = append(args, strings.ToLower(string(f.Auth)))
	}
	switch g := strings.ToLower(strings.TrimSpace(f.Gateway)); g {
	case "":
	case GatewayNone:
		q += " AND gateway = ''"
	case GatewayAny:
		q += " AND gateway <> ''"
	default:
		q += " AND LOWER(gateway) = ?"
		args = append(args, g)
	}
	if !f.SeenSince.IsZero() {
		q += " AND last_seen >= ?"
		args = append(args, dbTime(f.SeenSince))
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, s.errf(err, "list hosts")
	}
	defer rows.Close()
	out := []Host{}
	for rows.Next() {
		var (
			h               Host
			auth, risk      string
			first, last     time.Time
			firstR, lastR   int64
			models, finding int
		)
		if err := rows.Scan(&h.Host, &h.Port, &h.Hostname, &h.Product, &h.Version, &auth, &risk, &models, &finding,
			&h.TopFinding, &first, &last, &firstR, &lastR, &h.Gateway); err != nil {
			return nil, s.errf(err, "list hosts")
		}
		if !match(h.Host) {
			continue
		}
		h.Auth, h.Risk, h.Models, h.Findings = service.Auth(auth), service.Severity(risk), models, finding
		h.FirstSeen, h.LastSeen = first.UTC(), last.UTC()
		h.FirstRun, h.LastRun = formatID(firstR), formatID(lastR)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf(err, "list hosts")
	}
	slices.SortFunc(out, func(a, b Host) int { return compareAddrPort(a.Host, a.Port, b.Host, b.Port) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// ---- findings ----

func (s *sqlStore) Findings(ctx context.Context, f FindingFilter) ([]FindingRow, error) {
	match, err := addressMatcher(f.Address)
	if err != nil {
		return nil, err
	}
	ref := f.Run
	if strings.TrimSpace(ref) == "" {
		ref = RefLatest
	}
	runID, err := s.resolve(ctx, s.db, ref)
	if err != nil {
		return nil, err
	}
	q := `SELECT f.host, f.port, s.hostname, s.product, f.finding_id, f.severity, f.severity_rank, f.title, f.detail
		FROM findings f JOIN services s ON s.id = f.service_id WHERE f.run_id = ?`
	args := []any{runID}
	if f.MinSeverity != "" {
		sev, ok := service.ParseSeverity(string(f.MinSeverity))
		if !ok {
			return nil, fmt.Errorf("minimum severity %q: want none, info, low, medium, high or critical: %w", f.MinSeverity, ErrBadInput)
		}
		q += " AND f.severity_rank >= ?"
		args = append(args, sev.Rank())
	}
	if id := strings.TrimSpace(f.ID); id != "" {
		q += " AND LOWER(f.finding_id) = ?"
		args = append(args, strings.ToLower(id))
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, s.errf(err, "list findings")
	}
	defer rows.Close()
	type ranked struct {
		FindingRow
		rank int
	}
	var tmp []ranked
	for rows.Next() {
		var (
			r   ranked
			sev string
		)
		if err := rows.Scan(&r.Host, &r.Port, &r.Hostname, &r.Product, &r.ID, &sev, &r.rank, &r.Title, &r.Detail); err != nil {
			return nil, s.errf(err, "list findings")
		}
		if !match(r.Host) {
			continue
		}
		r.RunID, r.Severity = formatID(runID), service.Severity(sev)
		tmp = append(tmp, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf(err, "list findings")
	}
	slices.SortFunc(tmp, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(b.rank, a.rank), strings.Compare(a.ID, b.ID),
			compareAddrPort(a.Host, a.Port, b.Host, b.Port), strings.Compare(a.Detail, b.Detail))
	})
	out := make([]FindingRow, len(tmp))
	for i, r := range tmp {
		out[i] = r.FindingRow
	}
	return out, nil
}

// ---- diff ----

func (s *sqlStore) Diff(ctx context.Context, a, b string) (Diff, error) {
	ra, err := s.GetRun(ctx, a)
	if err != nil {
		return Diff{}, err
	}
	rb, err := s.GetRun(ctx, b)
	if err != nil {
		return Diff{}, err
	}
	ida, _ := parseID(ra.ID)
	idb, _ := parseID(rb.ID)
	sa, err := s.services(ctx, ida)
	if err != nil {
		return Diff{}, s.errf(err, "read services of run %s", ra.ID)
	}
	sb, err := s.services(ctx, idb)
	if err != nil {
		return Diff{}, s.errf(err, "read services of run %s", rb.ID)
	}
	d := DiffServices(sa, sb)
	d.From, d.To = ra, rb
	return d, nil
}

// ---- helpers ----

// errf wraps a database error in the user's terms, naming the store.
func (s *sqlStore) errf(err error, format string, args ...any) error {
	return fmt.Errorf("%s (store %s): %w", fmt.Sprintf(format, args...), s.where, err)
}

func parseID(runID string) (int64, error) {
	id, kw, err := ResolveRef(runID)
	if err != nil {
		return 0, err
	}
	if kw != "" {
		return 0, fmt.Errorf("run reference %q: a run ID is needed here: %w", runID, ErrBadInput)
	}
	return id, nil
}

func formatID(id int64) string { return strconv.FormatInt(id, 10) }

// clean makes a string storable in an indexed text column on both back
// ends: PostgreSQL rejects NUL bytes and invalid UTF-8, and hostile servers
// send both.
func clean(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func joinHostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// compareAddrPort orders by IP address (numerically, IPv4 before IPv6),
// then port; hosts that are not IP addresses sort after, by text.
func compareAddrPort(ha string, pa int, hb string, pb int) int {
	a, errA := netip.ParseAddr(ha)
	b, errB := netip.ParseAddr(hb)
	switch {
	case errA == nil && errB == nil:
		if c := a.Unmap().Compare(b.Unmap()); c != 0 {
			return c
		}
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	default:
		if c := strings.Compare(ha, hb); c != 0 {
			return c
		}
	}
	return cmp.Compare(pa, pb)
}

func sortServices(svcs []service.Service) {
	slices.SortStableFunc(svcs, func(a, b service.Service) int {
		return compareAddrPort(a.Host, a.Port, b.Host, b.Port)
	})
}

// addressMatcher turns an address filter ("", an IP or a prefix) into a
// predicate on stored host strings.
func addressMatcher(f string) (func(string) bool, error) {
	f = strings.TrimSpace(f)
	if f == "" {
		return func(string) bool { return true }, nil
	}
	var pfx netip.Prefix
	if strings.Contains(f, "/") {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("address filter %q: not an IP prefix like 10.0.0.0/24: %w", f, ErrBadInput)
		}
		pfx = p.Masked()
	} else {
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("address filter %q: not an IP address: %w", f, ErrBadInput)
		}
		a = a.Unmap()
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	return func(h string) bool {
		a, err := netip.ParseAddr(h)
		return err == nil && pfx.Contains(a.Unmap())
	}, nil
}
