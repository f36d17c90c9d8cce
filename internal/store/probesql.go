package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/llmfence/llmfence/internal/service"
)

// ---- probe runs (migration 0006) ----

func (s *sqlStore) CreateProbeRun(ctx context.Context, r ProbeRun) (ProbeRun, error) {
	out := ProbeRun{StartedAt: s.clock(), Status: StatusRunning, Target: clean(r.Target), Host: clean(r.Host), Port: r.Port,
		API: clean(r.API), Model: clean(r.Model), ModelDigest: clean(r.ModelDigest), Baseline: clean(r.Baseline),
		Judge: clean(r.Judge), Suites: nonNil(r.Suites), Journal: clean(r.Journal), Args: r.Args, ToolVersion: clean(r.ToolVersion),
		Worst: service.SeverityNone}
	if out.Target == "" || out.Model == "" {
		return ProbeRun{}, fmt.Errorf("record a probe run: target and model are required: %w", ErrBadInput)
	}
	suites, _ := json.Marshal(out.Suites)
	args, _ := json.Marshal(nonNil(out.Args))
	var id int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, s.d.rebind(`INSERT INTO probe_runs
			(started_at, status, target, host, port, api, model, model_digest, baseline, judge, suites, journal, args, tool_version)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
			out.StartedAt, string(out.Status), out.Target, out.Host, out.Port, out.API, out.Model, out.ModelDigest,
			out.Baseline, out.Judge, string(suites), out.Journal, string(args), out.ToolVersion).Scan(&id)
	})
	if err != nil {
		return ProbeRun{}, s.errf(err, "record a new probe run")
	}
	out.ID = formatID(id)
	return out, nil
}

func (s *sqlStore) probeUpdate(ctx context.Context, what, id, q string, args ...any) error {
	n, err := parseID(id)
	if err != nil {
		return err
	}
	var rows int64
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.rebind(q), append(args, n)...)
		if err != nil {
			return err
		}
		rows, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return s.errf(err, "%s probe run %s", what, id)
	}
	if rows == 0 {
		return fmt.Errorf("%s probe run %s: no such run: %w", what, id, ErrNotFound)
	}
	return nil
}

func (s *sqlStore) SetProbeJournal(ctx context.Context, id, journal string) error {
	return s.probeUpdate(ctx, "set the journal of", id, `UPDATE probe_runs SET journal = ? WHERE id = ?`, clean(journal))
}

func (s *sqlStore) ReopenProbeRun(ctx context.Context, id string) error {
	return s.probeUpdate(ctx, "reopen", id, `UPDATE probe_runs SET status = ?, finished_at = NULL, error = '' WHERE id = ?`, string(StatusRunning))
}

func (s *sqlStore) FinishProbeRun(ctx context.Context, id string, status RunStatus, reason string, requests int, complete bool, verdicts []ProbeVerdict) error {
	switch status {
	case StatusFinished, StatusFailed, StatusInterrupted:
	default:
		return fmt.Errorf("end probe run %s: status %q is not finished, failed or interrupted: %w", id, status, ErrBadInput)
	}
	n, err := parseID(id)
	if err != nil {
		return err
	}
	worst := service.SeverityNone
	for _, v := range verdicts {
		if v.Severity.Rank() > worst.Rank() {
			worst = v.Severity
		}
	}
	var rows int64
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE probe_runs SET status = ?, finished_at = ?, error = ?, requests = ?,
			complete = ?, worst = ?, worst_rank = ? WHERE id = ?`),
			string(status), s.clock(), clean(reason), requests, complete, string(worst), worst.Rank(), n)
		if err != nil {
			return err
		}
		if rows, err = res.RowsAffected(); err != nil || rows == 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM probe_verdicts WHERE run_id = ?`), n); err != nil {
			return err
		}
		for _, v := range verdicts {
			doc := string(v.Summary)
			if doc == "" {
				doc = "{}"
			}
			if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO probe_verdicts (run_id, suite, verdict, severity, summary)
				VALUES (?, ?, ?, ?, ?)`), n, clean(v.Suite), clean(v.Verdict), string(v.Severity), clean(doc)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return s.errf(err, "end probe run %s", id)
	}
	if rows == 0 {
		return fmt.Errorf("end probe run %s: no such run: %w", id, ErrNotFound)
	}
	return nil
}

const probeRunColumns = `id, started_at, finished_at, status, error, target, host, port, api, model, model_digest, baseline,
	judge, suites, journal, args, tool_version, requests, complete, worst`

func scanProbeRun(sc interface{ Scan(...any) error }) (ProbeRun, error) {
	var (
		r             ProbeRun
		id            int64
		finished      sql.NullTime
		status, worst string
		suites, args  string
	)
	if err := sc.Scan(&id, &r.StartedAt, &finished, &status, &r.Error, &r.Target, &r.Host, &r.Port, &r.API, &r.Model,
		&r.ModelDigest, &r.Baseline, &r.Judge, &suites, &r.Journal, &args, &r.ToolVersion, &r.Requests, &r.Complete, &worst); err != nil {
		return ProbeRun{}, err
	}
	r.ID, r.Status, r.Worst = formatID(id), RunStatus(status), service.Severity(worst)
	r.StartedAt = r.StartedAt.UTC()
	if finished.Valid {
		r.FinishedAt = finished.Time.UTC()
	}
	if err := json.Unmarshal([]byte(suites), &r.Suites); err != nil {
		return ProbeRun{}, fmt.Errorf("suites %q: %w", suites, err)
	}
	if err := json.Unmarshal([]byte(args), &r.Args); err != nil {
		return ProbeRun{}, fmt.Errorf("args %q: %w", args, err)
	}
	if len(r.Args) == 0 {
		r.Args = nil
	}
	return r, nil
}

func (s *sqlStore) ProbeRuns(ctx context.Context, f ProbeRunFilter) ([]ProbeRun, error) {
	var where []string
	var args []any
	if f.Host != "" {
		where, args = append(where, "host = ?"), append(args, f.Host)
	}
	if f.Port != 0 {
		where, args = append(where, "port = ?"), append(args, f.Port)
	}
	if f.Model != "" {
		where, args = append(where, "model = ?"), append(args, f.Model)
	}
	q := "SELECT " + probeRunColumns + " FROM probe_runs"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, s.errf(err, "list probe runs")
	}
	var out []ProbeRun
	for rows.Next() {
		r, err := scanProbeRun(rows)
		if err != nil {
			rows.Close()
			return nil, s.errf(err, "list probe runs")
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.errf(err, "list probe runs")
	}
	for i := range out {
		if out[i].Verdicts, err = s.probeVerdicts(ctx, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *sqlStore) GetProbeRun(ctx context.Context, id string) (ProbeRun, error) {
	n, err := parseID(id)
	if err != nil {
		return ProbeRun{}, err
	}
	r, err := scanProbeRun(s.db.QueryRowContext(ctx, s.d.rebind("SELECT "+probeRunColumns+" FROM probe_runs WHERE id = ?"), n))
	if err == sql.ErrNoRows {
		return ProbeRun{}, fmt.Errorf("probe run %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return ProbeRun{}, s.errf(err, "read probe run %s", id)
	}
	r.Verdicts, err = s.probeVerdicts(ctx, r.ID)
	return r, err
}

func (s *sqlStore) probeVerdicts(ctx context.Context, id string) ([]ProbeVerdict, error) {
	n, err := parseID(id)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT suite, verdict, severity, summary FROM probe_verdicts WHERE run_id = ?`), n)
	if err != nil {
		return nil, s.errf(err, "read the verdicts of probe run %s", id)
	}
	defer rows.Close()
	var out []ProbeVerdict
	for rows.Next() {
		var v ProbeVerdict
		var sev, doc string
		if err := rows.Scan(&v.Suite, &v.Verdict, &sev, &doc); err != nil {
			return nil, s.errf(err, "read the verdicts of probe run %s", id)
		}
		v.Severity, v.Summary = service.Severity(sev), json.RawMessage(doc)
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf(err, "read the verdicts of probe run %s", id)
	}
	suiteOrder := map[string]int{"guardrails": 0, "backdoor": 1, "leak": 2, "robustness": 3}
	sortVerdicts(out, suiteOrder)
	return out, nil
}

func sortVerdicts(vs []ProbeVerdict, order map[string]int) {
	for i := 1; i < len(vs); i++ {
		for j := i; j > 0 && order[vs[j].Suite] < order[vs[j-1].Suite]; j-- {
			vs[j], vs[j-1] = vs[j-1], vs[j]
		}
	}
}
