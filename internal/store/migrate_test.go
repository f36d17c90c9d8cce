package store

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, tc := range []struct {
		name  string
		files fstest.MapFS
		want  []string // names, or nil when an error containing errSub is expected
		err   string
	}{
		{"ordered", fstest.MapFS{
			"migrations/x/0002_keys.sql":  file("B"),
			"migrations/x/0001_init.sql":  file("A"),
			"migrations/x/README.md":      file("not a migration"),
			"migrations/x/0003_audit.sql": file("C"),
		}, []string{"0001_init", "0002_keys", "0003_audit"}, ""},
		{"gap", fstest.MapFS{
			"migrations/x/0001_init.sql":  file("A"),
			"migrations/x/0003_audit.sql": file("C"),
		}, []string{"0001_init", "0003_audit"}, ""},
		{"duplicate", fstest.MapFS{
			"migrations/x/0001_init.sql":  file("A"),
			"migrations/x/0001_other.sql": file("B"),
		}, nil, "repeats"},
		{"bad name", fstest.MapFS{"migrations/x/init.sql": file("A")}, nil, "positive number"},
		{"empty", fstest.MapFS{"migrations/x/README.md": file("")}, nil, "no x migrations"},
	} {
		ms, err := loadMigrations(tc.files, "x")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var names []string
		for _, m := range ms {
			names = append(names, m.name)
		}
		if strings.Join(names, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: %v, want %v", tc.name, names, tc.want)
		}
	}
}

// Both dialects must carry the same migrations, so a database's version
// means the same schema on either back end.
func TestMigrationsInStep(t *testing.T) {
	lite, err := loadMigrations(migrationFiles, string(KindSQLite))
	if err != nil {
		t.Fatal(err)
	}
	pg, err := loadMigrations(migrationFiles, string(KindPostgres))
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) != len(pg) {
		t.Fatalf("sqlite has %d migrations, postgres %d", len(lite), len(pg))
	}
	for i := range lite {
		if lite[i].name != pg[i].name {
			t.Errorf("migration %d: sqlite %s, postgres %s", i+1, lite[i].name, pg[i].name)
		}
		for _, m := range []migration{lite[i], pg[i]} {
			if strings.Contains(m.sql, "schema_migrations") {
				t.Errorf("%s must not touch schema_migrations; the runner records versions", m.name)
			}
		}
	}
	if SchemaVersion(KindSQLite) != lite[len(lite)-1].version || SchemaVersion(KindPostgres) != pg[len(pg)-1].version {
		t.Errorf("SchemaVersion disagrees with the embedded migrations")
	}
}
