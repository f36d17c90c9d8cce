package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

// MaxDatascanFindings is the most findings kept per datascan run (the most
// severe ones; the run's totals count them all).
const MaxDatascanFindings = 5000

// DatascanRun is one datascan of a path on the serve host.
type DatascanRun struct {
	ID          int64      `json:"id"`
	Path        string     `json:"path"`
	Status      string     `json:"status"` // queued, running, finished, failed
	Error       string     `json:"error,omitempty"`
	RequestedBy string     `json:"requested_by,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	Files       int        `json:"files"`
	FileErrors  int        `json:"file_errors"`
	Records     int64      `json:"records"`
	Bytes       int64      `json:"bytes"`
	// Findings counts every finding; Kept those stored (at most
	// MaxDatascanFindings, the most severe).
	Findings  int              `json:"findings"`
	Kept      int              `json:"kept"`
	Worst     service.Severity `json:"worst"`
	Counts    map[string]int   `json:"counts"`
	Summaries json.RawMessage  `json:"summaries"`
	Warnings  []string         `json:"warnings"`
}

// DatascanFinding is one stored finding of a datascan run.
type DatascanFinding struct {
	RunID    int64            `json:"run_id"`
	Seq      int              `json:"seq"`
	Severity service.Severity `json:"severity"`
	Kind     string           `json:"kind"`
	File     string           `json:"file"`
	Record   int64            `json:"record"`
	Field    string           `json:"field,omitempty"`
	// Detail is the trigger (backdoor kinds) or the pattern (pii, secret).
	Detail   string          `json:"detail,omitempty"`
	Evidence string          `json:"evidence,omitempty"`
	Doc      json.RawMessage `json:"finding"`
}

// DatascanResult is a finished datascan's outcome.
type DatascanResult struct {
	Files, FileErrors int
	Records, Bytes    int64
	Findings          int
	Worst             service.Severity
	Counts            map[string]int
	Summaries         json.RawMessage
	Warnings          []string
	Kept              []DatascanFinding
}

// DatascanStore keeps datascan runs and their findings.
type DatascanStore interface {
	// QueueDatascan records a queued run of path, calling inTx inside the
	// same transaction (to enqueue its job).
	QueueDatascan(ctx context.Context, path, by string, inTx func(ctx context.Context, tx *sql.Tx, id int64) error) (DatascanRun, error)
	StartDatascan(ctx context.Context, id int64) error
	// FinishDatascan stores a run's outcome (err non-nil: failed, keeping
	// nothing) and calls inTx in the same transaction (to raise events).
	FinishDatascan(ctx context.Context, id int64, res DatascanResult, runErr error, inTx func(ctx context.Context, tx *sql.Tx) error) error
	DatascanRuns(ctx context.Context, p Page) ([]DatascanRun, bool, error)
	GetDatascan(ctx context.Context, id int64) (DatascanRun, error)
	DatascanFindings(ctx context.Context, id int64, p Page) ([]DatascanFinding, bool, error)
}

const datascanCols = `id, path, status, error, requested_by, created_at, started_at, finished_at, files, file_errors, records, bytes,
	findings, kept, worst, counts, summaries, warnings`

func scanDatascan(sc interface{ Scan(...any) error }) (DatascanRun, error) {
	var r DatascanRun
	var started, finished sql.NullTime
	var counts, sums, warns string
	err := sc.Scan(&r.ID, &r.Path, &r.Status, &r.Error, &r.RequestedBy, &r.CreatedAt, &started, &finished, &r.Files, &r.FileErrors,
		&r.Records, &r.Bytes, &r.Findings, &r.Kept, &r.Worst, &counts, &sums, &warns)
	if err != nil {
		return r, err
	}
	r.CreatedAt, r.StartedAt, r.FinishedAt = r.CreatedAt.UTC(), nullTime(started), nullTime(finished)
	_ = json.Unmarshal([]byte(counts), &r.Counts)
	if r.Counts == nil {
		r.Counts = map[string]int{}
	}
	r.Summaries = json.RawMessage(sums)
	if !json.Valid(r.Summaries) {
		r.Summaries = json.RawMessage("[]")
	}
	_ = json.Unmarshal([]byte(warns), &r.Warnings)
	r.Warnings = nonNil(r.Warnings)
	return r, nil
}

func (s *sqlStore) QueueDatascan(ctx context.Context, path, by string, inTx func(ctx context.Context, tx *sql.Tx, id int64) error) (DatascanRun, error) {
	var id int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, s.d.rebind(`INSERT INTO datascan_runs (path, status, requested_by, created_at) VALUES (?, 'queued', ?, ?) RETURNING id`),
			clean(path), clean(by), s.clock()).Scan(&id); err != nil {
			return err
		}
		if inTx != nil {
			return inTx(ctx, tx, id)
		}
		return nil
	})
	if err != nil {
		return DatascanRun{}, s.errf(err, "queue datascan of %s", path)
	}
	return s.GetDatascan(ctx, id)
}

func (s *sqlStore) StartDatascan(ctx context.Context, id int64) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE datascan_runs SET status = 'running', started_at = ? WHERE id = ?`), s.clock(), id)
		return err
	})
	if err != nil {
		return s.errf(err, "start datascan %d", id)
	}
	return nil
}

func (s *sqlStore) FinishDatascan(ctx context.Context, id int64, res DatascanResult, runErr error, inTx func(ctx context.Context, tx *sql.Tx) error) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM datascan_findings WHERE run_id = ?`), id); err != nil {
			return err
		}
		now := s.clock()
		if runErr != nil {
			_, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE datascan_runs SET status = 'failed', error = ?, finished_at = ? WHERE id = ?`),
				clean(runErr.Error()), now, id)
			return err
		}
		for i, f := range res.Kept {
			if i >= MaxDatascanFindings {
				break
			}
			if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO datascan_findings (run_id, seq, sev_rank, severity, kind, file, record, field, detail, evidence, doc)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), id, i, -f.Severity.Rank(), string(f.Severity), clean(f.Kind), clean(f.File), f.Record,
				clean(f.Field), clean(f.Detail), clean(f.Evidence), clean(string(f.Doc))); err != nil {
				return err
			}
		}
		counts, _ := json.Marshal(res.Counts)
		if res.Counts == nil {
			counts = []byte("{}")
		}
		sums := string(res.Summaries)
		if sums == "" || !json.Valid(res.Summaries) {
			sums = "[]"
		}
		warns, _ := json.Marshal(nonNil(res.Warnings))
		worst := res.Worst
		if worst == "" {
			worst = service.SeverityNone
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE datascan_runs SET status = 'finished', error = '', finished_at = ?, files = ?, file_errors = ?,
			records = ?, bytes = ?, findings = ?, kept = ?, worst = ?, counts = ?, summaries = ?, warnings = ? WHERE id = ?`),
			now, res.Files, res.FileErrors, res.Records, res.Bytes, res.Findings, min(len(res.Kept), MaxDatascanFindings), string(worst),
			string(counts), clean(sums), clean(string(warns)), id); err != nil {
			return err
		}
		if inTx != nil {
			return inTx(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return s.errf(err, "save datascan %d", id)
	}
	return nil
}

func (s *sqlStore) DatascanRuns(ctx context.Context, p Page) ([]DatascanRun, bool, error) {
	p = p.norm()
	rows, err := s.db.QueryContext(ctx, s.d.rebind("SELECT "+datascanCols+" FROM datascan_runs ORDER BY id DESC LIMIT ? OFFSET ?"),
		p.Limit+1, min(p.Offset, MaxOffset))
	if err != nil {
		return nil, false, s.errf(err, "list datascans")
	}
	defer rows.Close()
	out := []DatascanRun{}
	for rows.Next() {
		r, err := scanDatascan(rows)
		if err != nil {
			return nil, false, s.errf(err, "list datascans")
		}
		out = append(out, r)
	}
	more := len(out) > p.Limit
	if more {
		out = out[:p.Limit]
	}
	return out, more, rows.Err()
}

func (s *sqlStore) GetDatascan(ctx context.Context, id int64) (DatascanRun, error) {
	r, err := scanDatascan(s.db.QueryRowContext(ctx, s.d.rebind("SELECT "+datascanCols+" FROM datascan_runs WHERE id = ?"), id))
	if err == sql.ErrNoRows {
		return r, fmt.Errorf("no datascan %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return r, s.errf(err, "read datascan %d", id)
	}
	return r, nil
}

func (s *sqlStore) DatascanFindings(ctx context.Context, id int64, p Page) ([]DatascanFinding, bool, error) {
	p = p.norm()
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT run_id, seq, severity, kind, file, record, field, detail, evidence, doc FROM datascan_findings
		WHERE run_id = ? ORDER BY sev_rank, seq LIMIT ? OFFSET ?`), id, p.Limit+1, min(p.Offset, MaxOffset))
	if err != nil {
		return nil, false, s.errf(err, "read findings of datascan %d", id)
	}
	defer rows.Close()
	out := []DatascanFinding{}
	for rows.Next() {
		var f DatascanFinding
		var doc string
		if err := rows.Scan(&f.RunID, &f.Seq, &f.Severity, &f.Kind, &f.File, &f.Record, &f.Field, &f.Detail, &f.Evidence, &doc); err != nil {
			return nil, false, s.errf(err, "read findings of datascan %d", id)
		}
		f.Doc = json.RawMessage(doc)
		out = append(out, f)
	}
	more := len(out) > p.Limit
	if more {
		out = out[:p.Limit]
	}
	return out, more, rows.Err()
}
