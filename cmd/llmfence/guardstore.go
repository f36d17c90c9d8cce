package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/llmfence/llmfence/internal/store"
)

// storeUse says how a guard-family command (guard, keys, usage, captures)
// may open the store.
type storeUse struct {
	// createDir lets an explicit SQLite path's missing directory be
	// created (--create-dir).
	createDir bool
	// mustExist refuses a SQLite file that does not exist yet: commands
	// that only read or change existing keys and records.
	mustExist bool
}

// openGuardStore opens the store for a guard-family command. A SQLite
// --db (or $LLMFENCE_DB) the user named is checked first: a directory that
// does not exist is refused unless createDir (a typo would otherwise start
// an empty store silently), and with mustExist so is a file that does not
// exist. The default per-user location is created as needed.
func openGuardStore(ctx context.Context, e *env, use storeUse) (store.GuardStore, error) {
	named := strings.TrimSpace(e.db)
	if named == "" {
		named = strings.TrimSpace(os.Getenv(store.EnvDB))
	}
	if named != "" {
		if kind, path, err := store.ParseDSN(named); err == nil && kind == store.KindSQLite {
			dir := filepath.Dir(path)
			if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) && !use.createDir {
				hint := ""
				if !use.mustExist {
					hint = ", or pass --create-dir"
				}
				return nil, badKeysArg(fmt.Errorf("database %s: directory %s does not exist (check the path%s)", path, dir, hint))
			}
			if use.mustExist {
				if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
					return nil, badKeysArg(fmt.Errorf("no store at %s (check --db; `llmfence keys create` makes one)", path))
				}
			}
		}
	}
	return store.OpenGuard(ctx, e.db)
}
