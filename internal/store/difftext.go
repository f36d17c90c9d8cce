package store

// Redact returns a DSN fit for display: a PostgreSQL password becomes
// "xxxxx"; anything else is returned unchanged.
func Redact(dsn string) string {
	if k, _, err := ParseDSN(dsn); err == nil && k == KindPostgres {
		return redactDSN(dsn)
	}
	return dsn
}
