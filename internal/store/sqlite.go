package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// sqliteParams configure every pooled connection: WAL so readers never
// block the writer, a generous busy timeout for a second llmfence process,
// foreign keys for ON DELETE CASCADE, IMMEDIATE transactions so a write
// transaction takes the write lock up front (no upgrade deadlocks), and a
// fixed, sortable time format.
const sqliteParams = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
	"&_pragma=synchronous(NORMAL)&_txlock=immediate&_time_format=sqlite"

func openSQLite(ctx context.Context, path string, opts Options) (Store, error) {
	where := path
	memory := path == ":memory:"
	if !memory {
		abs, err := filepath.Abs(path)
		if err == nil {
			path, where = abs, abs
		}
		if err := prepareDir(filepath.Dir(path)); err != nil {
			return nil, fmt.Errorf("cannot open store at %s: %w", where, err)
		}
		if fi, err := os.Stat(path); err == nil && fi.IsDir() {
			return nil, fmt.Errorf("cannot open store at %s: it is a directory", where)
		}
		// Create a new database file 0600 (SQLite would use 0644); its
		// -wal and -shm files inherit the mode.
		if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
			f.Close()
		} else if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("cannot open store at %s: %w", where, err)
		}
	}
	db, err := sql.Open("sqlite", path+"?"+sqliteParams)
	if err != nil {
		return nil, fmt.Errorf("cannot open store at %s: %w", where, err)
	}
	if memory {
		// Every connection would get its own empty in-memory database.
		db.SetMaxOpenConns(1)
	} else {
		// WAL: any number of readers next to the one writer that writeMu
		// admits. A small pool is plenty for a CLI.
		db.SetMaxOpenConns(4)
		db.SetMaxIdleConns(4)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot open store at %s: %w", where, err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_master").Scan(&n); err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot open store at %s: %w", where, err)
	}
	s := newSQLStore(db, sqliteDialect, where, opts, true)
	if err := migrate(ctx, db, sqliteDialect, where, s.clock(), s.log); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// prepareDir creates the database directory (0700: scan results are
// sensitive) and checks that SQLite will be able to create its journal
// files there.
func prepareDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("cannot create directory %s: %w", dir, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("directory %s: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".llmfence-probe-*")
	if err != nil {
		return fmt.Errorf("directory not writable: %w", err)
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}
