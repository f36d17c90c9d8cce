package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/llmfence/llmfence/internal/service"
)

func sqliteBackend() backend {
	return backend{
		newDSN: func(t *testing.T) string {
			return filepath.Join(t.TempDir(), "sub", "llmfence.db")
		},
		raw: func(t *testing.T, dsn, query string) {
			t.Helper()
			db, err := sql.Open("sqlite", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(query); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func TestSQLite(t *testing.T) {
	testStore(t, sqliteBackend())
}

func TestSQLiteFiles(t *testing.T) {
	ctx := context.Background()

	t.Run("creates the directory 0700, the file 0600 and uses WAL", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "b")
		s := openT(t, "sqlite:"+filepath.Join(dir, "x.db"), Options{})
		if _, err := s.CreateRun(ctx, Run{}); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "x.db"): 0o600, filepath.Join(dir, "x.db-wal"): 0o600} {
			fi, err := os.Stat(name)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), want)
			}
		}
		var mode string
		var fk, busy int
		db := s.(*sqlStore).db
		if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode = %q, %v; want wal", mode, err)
		}
		if err := db.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
			t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
		}
		if err := db.QueryRow("PRAGMA busy_timeout").Scan(&busy); err != nil || busy < 1000 {
			t.Errorf("busy_timeout = %d, %v", busy, err)
		}
	})

	t.Run("errors name the path", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "plain")
		if err := os.WriteFile(file, []byte("not a database, just text that is long enough to be a header......"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, path, want string
		}{
			{"parent is a file", filepath.Join(file, "x.db"), "cannot open store at " + filepath.Join(file, "x.db")},
			{"path is a directory", dir, "is a directory"},
			{"not a database", file, "cannot open store at " + file},
		} {
			_, err := Open(ctx, tc.path)
			t.Logf("%s: %v", tc.name, err)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: Open(%s) = %v, want error containing %q", tc.name, tc.path, err, tc.want)
			}
		}
	})

	t.Run("directory not writable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root ignores directory permissions")
		}
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(dir, 0o700)
		p := filepath.Join(dir, "x.db")
		_, err := Open(ctx, p)
		want := "cannot open store at " + p + ": directory not writable"
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Open = %v, want %q", err, want)
		}
	})

	t.Run("in memory", func(t *testing.T) {
		s := openT(t, "sqlite::memory:", Options{})
		r, err := s.CreateRun(ctx, Run{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SaveServices(ctx, r.ID, []service.Service{svc("127.0.0.1", 1, "x", "", "none")}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Services(ctx, r.ID); err != nil || len(got) != 1 {
			t.Errorf("Services = %v, %v", got, err)
		}
	})

	t.Run("two stores on one file", func(t *testing.T) {
		// Two llmfence processes writing at once: busy_timeout must absorb it.
		p := filepath.Join(t.TempDir(), "shared.db")
		s1 := openT(t, p, Options{})
		s2 := openT(t, p, Options{})
		r, err := s1.CreateRun(ctx, Run{})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i, s := range []Store{s1, s2, s1, s2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range 5 {
					svcs := []service.Service{svc(fmt.Sprintf("10.9.%d.%d", i, b), 80, "http", "", "none")}
					if err := s.SaveServices(ctx, r.ID, svcs); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if got, _ := s2.Services(ctx, r.ID); len(got) != 20 {
			t.Errorf("services = %d, want 20", len(got))
		}
	})
}

func BenchmarkSQLiteSave2000(b *testing.B) {
	ctx := context.Background()
	batches := make([][]service.Service, 20)
	for i := range batches {
		batches[i] = make([]service.Service, 100)
		for j := range batches[i] {
			sv := svc(fmt.Sprintf("10.2.%d.%d", i, j), 11434, "ollama", "0.5.1", service.SeverityHigh)
			batches[i][j] = withFindings(sv, finding("A", service.SeverityHigh))
		}
	}
	for b.Loop() {
		b.StopTimer()
		s, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		r, _ := s.CreateRun(ctx, Run{})
		b.StartTimer()
		for _, batch := range batches {
			if err := s.SaveServices(ctx, r.ID, batch); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}
