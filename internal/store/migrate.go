package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string // file name without extension, e.g. "0001_init"
	sql     string
}

// loadMigrations reads migrations/<dialect>/NNNN_name.sql in version order
// and checks the numbers are positive and strictly increasing (no
// duplicates). Gaps are allowed: capabilities developed side by side are
// handed version numbers in advance, and a build may carry 5 before 4
// lands. The runner applies every embedded version a database lacks,
// whatever its number, so a later build that fills a gap still applies it.
func loadMigrations(fsys fs.FS, dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read %s migrations: %w", dialect, err)
	}
	var out []migration
	for _, e := range entries { // ReadDir sorts by name
		name, ok := strings.CutSuffix(e.Name(), ".sql")
		if !ok || e.IsDir() {
			continue
		}
		num, _, _ := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s/%s: name must start with a positive number", dir, e.Name())
		}
		if len(out) > 0 && v <= out[len(out)-1].version {
			return nil, fmt.Errorf("migration %s/%s: version %d repeats or goes back (after %d)", dir, e.Name(), v, out[len(out)-1].version)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s migrations embedded", dialect)
	}
	return out, nil
}

// SchemaVersion is the newest schema version this build knows for kind.
func SchemaVersion(kind Kind) int {
	ms, err := loadMigrations(migrationFiles, string(kind))
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// migrate brings the database to the newest schema. All pending migrations
// run in one transaction; a database already current is only read.
func migrate(ctx context.Context, db *sql.DB, d *dialect, where string, now time.Time, log *slog.Logger) error {
	ms, err := loadMigrations(migrationFiles, string(d.kind))
	if err != nil {
		return err
	}
	latest := ms[len(ms)-1].version

	// Fast path: no write transaction when nothing is to be done (every
	// embedded version applied, none newer).
	if cur, n, err := currentVersion(ctx, db, d); err == nil && cur == latest && n == len(ms) {
		return nil
	} else if err == nil && cur > latest {
		return tooNew(where, cur, latest)
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate database at %s: %w", where, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if d.migrationLock != "" {
		if _, err := tx.ExecContext(ctx, d.migrationLock); err != nil {
			return fmt.Errorf("migrate database at %s: lock: %w", where, err)
		}
	}
	if _, err := tx.ExecContext(ctx, d.migrationsTable); err != nil {
		return fmt.Errorf("migrate database at %s: create schema_migrations: %w", where, err)
	}
	applied := map[int]bool{}
	rows, err := tx.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return fmt.Errorf("migrate database at %s: read schema_migrations: %w", where, err)
	}
	maxV := 0
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("migrate database at %s: read schema_migrations: %w", where, err)
		}
		applied[v] = true
		maxV = max(maxV, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("migrate database at %s: read schema_migrations: %w", where, err)
	}
	if maxV > latest {
		return tooNew(where, maxV, latest)
	}
	n := 0
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migrate database at %s: apply %s (%s): %w", where, m.name, d.kind, err)
		}
		if _, err := tx.ExecContext(ctx, d.rebind("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
			m.version, m.name, now); err != nil {
			return fmt.Errorf("migrate database at %s: record %s: %w", where, m.name, err)
		}
		n++
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate database at %s: commit: %w", where, err)
	}
	if n > 0 {
		log.Debug("database schema migrated", "store", where, "applied", n, "version", latest)
	}
	return nil
}

// currentVersion reads the highest applied migration and how many are
// applied; it fails when the schema_migrations table does not exist yet.
func currentVersion(ctx context.Context, db *sql.DB, d *dialect) (int, int, error) {
	var v sql.NullInt64
	var n int
	if err := db.QueryRowContext(ctx, "SELECT MAX(version), COUNT(*) FROM schema_migrations").Scan(&v, &n); err != nil {
		return 0, 0, err
	}
	return int(v.Int64), n, nil
}

func tooNew(where string, have, know int) error {
	return fmt.Errorf("database at %s has schema version %d, but this llmfence knows only up to %d; upgrade llmfence or use another --db: %w",
		where, have, know, ErrSchemaTooNew)
}
