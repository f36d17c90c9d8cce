package guard

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/llmfence/llmfence/internal/store"
)

// DefaultSpoolDir is where the audit spool of a guard using the store dsn
// lives when audit.spool is not set: beside a SQLite file (<file>.audit),
// or, for PostgreSQL, in the per-user state directory under a name derived
// from the DSN ($XDG_STATE_HOME/llmfence/audit-<hash>, else
// ~/.local/state/llmfence/audit-<hash>), so guards of different stores on
// one host never share a spool.
func DefaultSpoolDir(dsn string) (string, error) {
	kind, target, err := store.ParseDSN(dsn)
	if err != nil {
		return "", err
	}
	if kind == store.KindSQLite {
		return target + ".audit", nil
	}
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" || !filepath.IsAbs(base) {
		home, err := os.UserHomeDir()
		if err != nil || home == "" {
			return "", fmt.Errorf("cannot choose an audit spool directory (set audit.spool): %w", err)
		}
		base = filepath.Join(home, ".local", "state")
	}
	sum := sha256.Sum256([]byte(RedactURL(target)))
	return filepath.Join(base, "llmfence", "audit-"+hex.EncodeToString(sum[:6])), nil
}

// RedactURL hides the password of a URL for messages and logs
// (user:xxxxx@host); anything that does not parse is returned as it is.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
