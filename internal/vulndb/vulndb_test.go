package vulndb

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/llmfence/llmfence/internal/service"
)

func embedded(t testing.TB) *DB {
	t.Helper()
	db, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestEmbeddedRecordsMatchOSVSchema validates every embedded record
// against the OSV schema (testdata/osv-schema.json).
func TestEmbeddedRecordsMatchOSVSchema(t *testing.T) {
	f, err := os.Open("testdata/osv-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("osv-schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("osv-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	names, _ := fs.Glob(embeddedFS, "osv/*.json")
	if len(names) < 40 {
		t.Fatalf("only %d embedded records", len(names))
	}
	for _, n := range names {
		b, _ := fs.ReadFile(embeddedFS, n)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("%s does not match the OSV schema: %v", n, err)
		}
	}
	// The schema is not a rubber stamp: a broken record fails it.
	bad, _ := jsonschema.UnmarshalJSON(strings.NewReader(`{"id":"X","modified":"2026-01-01T00:00:00Z","affected":[{"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0"},{"last_affected":"0.9"}]}]}]}`))
	if sch.Validate(bad) == nil {
		t.Errorf("a range with both fixed and last_affected passed the schema")
	}
}

// TestEmbeddedRecords checks each record one at a time: annotated, a known
// product, scores that match their vectors, severities that match their
// scores, and a published upstream source.
func TestEmbeddedRecords(t *testing.T) {
	db := embedded(t)
	recs, err := readEmbedded(embeddedFS)
	if err != nil {
		t.Fatal(err)
	}
	products := map[string]bool{}
	for _, v := range db.Vulns() {
		products[v.record.ID] = true
	}
	for _, r := range recs {
		t.Run(r.ID, func(t *testing.T) {
			if !products[r.ID] {
				t.Errorf("no affected package maps to an llmfence product")
			}
			n := r.Notes
			if n.ScoreVector != "" && strings.HasPrefix(n.ScoreVector, "CVSS:3") {
				got, err := cvss3BaseScore(n.ScoreVector)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := strconv.ParseFloat(n.Score, 64)
				if got != want {
					t.Errorf("score %s, but %s computes to %.1f", n.Score, n.ScoreVector, got)
				}
				found := false
				for _, s := range r.Severity {
					found = found || s.Score == n.ScoreVector
				}
				if !found {
					t.Errorf("the OSV severity list does not carry the CVSS v3 vector")
				}
			}
			if n.Score == "" && !strings.Contains(n.ScoreSource, "rated") && !strings.Contains(n.ScoreSource, "not verified") {
				t.Errorf("no score and no reason for the severity: %q", n.ScoreSource)
			}
			if !strings.HasPrefix(n.Advisory, "https://") {
				t.Errorf("advisory %q", n.Advisory)
			}
			if r.Modified.IsZero() {
				t.Errorf("no modified time")
			}
		})
	}
}

func TestCVSS3BaseScore(t *testing.T) {
	tests := []struct {
		vector string
		want   float64
	}{
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0},
		{"CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5},
		{"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.1},
		{"CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H", 6.5},
		{"CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:C/C:H/I:H/A:H", 9.1},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:N/A:N", 8.6},
		{"CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:U/C:H/I:H/A:N", 7.3},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:L/A:L", 6.5},
		{"CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0},
	}
	for _, tt := range tests {
		got, err := cvss3BaseScore(tt.vector)
		if err != nil || got != tt.want {
			t.Errorf("%s: %.1f, %v; want %.1f", tt.vector, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:N"} {
		if _, err := cvss3BaseScore(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestOrderings(t *testing.T) {
	tests := []struct {
		o    Ordering
		a, b string
		want int
		ok   bool
	}{
		{OrderSemver, "0.1.34", "0.1.33", 1, true},
		{OrderSemver, "v0.4", "0.4.0", 0, true},
		{OrderSemver, "0.35.0-rc1", "0.35.0", -1, true},
		{OrderSemver, "0.35.0-rc.2", "0.35.0-rc.10", -1, true},
		{OrderSemver, "1.0.0-alpha", "1.0.0-alpha.1", -1, true},
		{OrderSemver, "1.0.0-1", "1.0.0-alpha", -1, true},
		{OrderSemver, "0.5.7+build", "0.5.7", 0, true},
		{OrderSemver, "0.0.0", "0.1.0", 0, false},
		{OrderSemver, "latest", "0.1.0", 0, false},
		{OrderSemver, "1.2.3.4", "1.0", 0, false},
		{OrderPyPI, "0.10.1.1", "0.10.1", 1, true},
		{OrderPyPI, "0.8.5rc1", "0.8.5", -1, true},
		{OrderPyPI, "0.8.5.dev12+gabc", "0.8.5rc1", -1, true},
		{OrderPyPI, "0.6.6.post1", "0.6.6", 1, true},
		{OrderPyPI, "1.0a1", "1.0b1", -1, true},
		{OrderPyPI, "1.0.post1.dev1", "1.0.post1", -1, true},
		{OrderPyPI, "1!0.1", "2.0", 1, true},
		{OrderPyPI, "1.83.7", "1.83.7.0", 0, true},
		{OrderPyPI, "v1.84.0", "1.84", 0, true},
		{OrderPyPI, "1.82.7-stable", "1.82.7", 0, false},
		{OrderBuild, "b4500", "4500 (abc1234)", 0, true},
		{OrderBuild, "b9060", "b11393", -1, true},
		{OrderBuild, "b0", "b1", 0, false},
		{OrderBuild, "0.4.0", "b1", 0, false},
	}
	for _, tt := range tests {
		got, ok := tt.o.compare(tt.a, tt.b)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("%s: compare(%q, %q) = %d, %v; want %d, %v", tt.o, tt.a, tt.b, got, ok, tt.want, tt.ok)
		}
		if ok {
			if rev, _ := tt.o.compare(tt.b, tt.a); rev != -got {
				t.Errorf("%s: compare(%q, %q) is not antisymmetric", tt.o, tt.b, tt.a)
			}
		}
	}
}

func ev(spec ...string) []Event {
	var out []Event
	for _, s := range spec {
		k, v, _ := strings.Cut(s, "=")
		switch k {
		case "i":
			out = append(out, Event{Introduced: v})
		case "f":
			out = append(out, Event{Fixed: v})
		case "l":
			out = append(out, Event{LastAffected: v})
		case "x":
			out = append(out, Event{Limit: v})
		}
	}
	return out
}

// TestRangeEdgeCases is the OSV range semantics, one edge at a time.
func TestRangeEdgeCases(t *testing.T) {
	type tc struct {
		name       string
		aff        Affected
		o          Ordering
		v          string
		affected   bool
		fixed      string
		comparable bool
	}
	eco := func(e ...string) Affected { return Affected{Ranges: []Range{{Type: RangeEcosystem, Events: ev(e...)}}} }
	sem := func(e ...string) Affected { return Affected{Ranges: []Range{{Type: RangeSemver, Events: ev(e...)}}} }
	tests := []tc{
		{"below fixed", sem("i=0", "f=0.1.34"), OrderSemver, "0.1.33", true, "0.1.34", true},
		{"at fixed", sem("i=0", "f=0.1.34"), OrderSemver, "0.1.34", false, "", true},
		{"pre-release of fixed", sem("i=0", "f=0.1.34"), OrderSemver, "0.1.34-rc1", true, "0.1.34", true},
		{"at introduced", sem("i=0.34.2", "f=0.35.0"), OrderSemver, "0.34.2", true, "0.35.0", true},
		{"below introduced", sem("i=0.34.2", "f=0.35.0"), OrderSemver, "0.34.1", false, "", true},
		{"at last_affected", sem("i=0", "l=0.3.14"), OrderSemver, "0.3.14", true, "", true},
		{"above last_affected", sem("i=0", "l=0.3.14"), OrderSemver, "0.3.15", false, "", true},
		{"no fix yet: any version", sem("i=0"), OrderSemver, "9.9.9", true, "", true},
		{"no fix yet: from introduced", sem("i=0.2.0"), OrderSemver, "0.1.9", false, "", true},
		{"re-introduced after a fix", sem("i=0", "f=1.0.0", "i=2.0.0", "f=2.1.0"), OrderSemver, "1.5.0", false, "", true},
		{"inside the second window", sem("i=0", "f=1.0.0", "i=2.0.0", "f=2.1.0"), OrderSemver, "2.0.5", true, "2.1.0", true},
		{"events out of order", sem("f=2.1.0", "i=2.0.0"), OrderSemver, "2.0.5", true, "2.1.0", true},
		{"limit excludes", eco("i=b100", "x=b300"), OrderBuild, "b300", false, "", true},
		{"below limit", eco("i=b100", "x=b300"), OrderBuild, "b299", true, "", true},
		{"limit star is no limit", eco("i=b100", "x=*"), OrderBuild, "b99999", true, "", true},
		{"llama.cpp build inside", eco("i=b8227", "f=b11393"), OrderBuild, "b9060", true, "b11393", true},
		{"llama.cpp build as reported", eco("i=b8227", "f=b11393"), OrderBuild, "11392 (dbe4c3e)", true, "b11393", true},
		{"llama.cpp build fixed", eco("i=b8227", "f=b11393"), OrderBuild, "b11393", false, "", true},
		{"PyPI four-part fix", eco("i=0.1.0", "f=0.10.1.1"), OrderPyPI, "0.10.1", true, "0.10.1.1", true},
		{"PyPI post release of fixed", eco("i=0.1.0", "f=0.10.1.1"), OrderPyPI, "0.10.1.1.post1", false, "", true},
		{"PyPI dev before fixed", eco("i=0", "f=1.84.0"), OrderPyPI, "1.84.0.dev3", true, "1.84.0", true},
		{"placeholder version", sem("i=0"), OrderSemver, "0.0.0", false, "", false},
		{"empty version", sem("i=0"), OrderSemver, "", false, "", false},
		{"bound in another format", eco("i=0", "f=55d4206c8"), OrderBuild, "b5000", false, "", false},
		{"GIT range never claims", Affected{Ranges: []Range{{Type: RangeGit, Repo: "https://github.com/ggml-org/llama.cpp", Events: ev("i=0", "l=55d4206c8")}}}, OrderBuild, "b5000", false, "", false},
		{"version list", Affected{Versions: []string{"1.82.7", "1.82.8"}}, OrderPyPI, "1.82.8", true, "", true},
		{"version list miss", Affected{Versions: []string{"1.82.7", "1.82.8"}}, OrderPyPI, "1.82.9", false, "", true},
		{"version list normalised", Affected{Versions: []string{"2.5"}}, OrderSemver, "v2.5.0", true, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := evaluate(&tt.aff, tt.o, tt.v)
			want := Verdict{Affected: tt.affected, Fixed: tt.fixed, Comparable: tt.comparable}
			if got != want {
				t.Errorf("evaluate(%s) = %+v, want %+v", tt.v, got, want)
			}
		})
	}
}

// TestEmbeddedVerdicts pins what the data says for versions people run.
func TestEmbeddedVerdicts(t *testing.T) {
	db := embedded(t)
	find := func(id, product string) Vuln {
		for _, v := range db.Vulns() {
			if v.ID == id && v.Product == product {
				return v
			}
		}
		t.Fatalf("no %s for %s", id, product)
		return Vuln{}
	}
	tests := []struct {
		id, product, version string
		affected             bool
		fixed                string
	}{
		{"CVE-2024-12886", "ollama", "0.17.4", true, ""}, // no fix yet
		{"CVE-2024-12886", "ollama", "0.0.0", false, ""},
		{"CVE-2026-103663", "ollama", "0.34.2", true, "0.35.0"},
		{"CVE-2026-103663", "ollama", "0.35.0", false, ""},
		{"CVE-2026-103663", "ollama", "0.17.4", false, ""},
		{"CVE-2025-63389", "ollama", "0.12.3", true, ""},
		{"CVE-2025-63389", "ollama", "0.12.4", false, ""},
		{"CVE-2026-43631", "llamacpp", "b9060", true, ""},
		{"CVE-2026-43631", "llamacpp", "b9061", false, ""},
		{"CVE-2026-21869", "llamacpp", "b5000", false, ""}, // GIT commit range
		{"PYSEC-2026-2", "litellm", "1.82.8", true, ""},
		{"PYSEC-2026-2", "litellm", "1.82.9", false, ""},
		{"CVE-2025-12488", "text-generation-webui", "2.5", true, ""},
		{"CVE-2025-12488", "text-generation-webui", "3.15", false, ""},
		{"CVE-2025-48956", "vllm", "0.10.1", true, "0.10.1.1"},
		{"CVE-2026-3059", "sglang", "0.5.9", true, "0.5.10"},
		{"CVE-2026-59707", "localai", "v4.3.1", true, ""},
	}
	for _, tt := range tests {
		got := find(tt.id, tt.product).Check(tt.version)
		if got.Affected != tt.affected || got.Fixed != tt.fixed {
			t.Errorf("%s %s %s: %+v, want affected %v fixed %q", tt.id, tt.product, tt.version, got, tt.affected, tt.fixed)
		}
	}
	if d := db.Date(); d.IsZero() || d.After(time.Now().Add(24*time.Hour)) {
		t.Errorf("data date %v", d)
	}
}

func TestProductMap(t *testing.T) {
	p, err := EmbeddedProducts()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		eco, name, want string
	}{
		{"Go", "github.com/ollama/ollama", "ollama"},
		{"PyPI", "vLLM", "vllm"},
		{"PyPI", "Open_WebUI", "open-webui"},
		{"GIT", "https://github.com/ggml-org/llama.cpp.git", "llamacpp"},
		{"GIT", "https://github.com/ggerganov/llama.cpp/", "llamacpp"},
		{"Go", "github.com/mudler/localai", "localai"},
		{"npm", "vllm", ""},
		{"PyPI", "ollama", ""},
	}
	for _, tt := range tests {
		e, ok := p.Lookup(&Package{Ecosystem: tt.eco, Name: tt.name})
		if got := e.Product; (ok && got != tt.want) || (!ok && tt.want != "") {
			t.Errorf("%s %s: %q, want %q", tt.eco, tt.name, got, tt.want)
		}
	}
	if _, err := parseProducts([]byte("version: 1\npackages:\n  - product: x\n    ecosystem: Go\n    names: [a]\n    ordering: calendar\n    source: s\n")); err == nil {
		t.Errorf("unknown ordering accepted")
	}
	if _, err := parseProducts([]byte("version: 1\npackages:\n  - product: x\n    ecosytem: Go\n")); err == nil {
		t.Errorf("unknown field accepted")
	}
}

func TestParseRecordRejects(t *testing.T) {
	for name, in := range map[string]string{
		"no id":            `{"modified":"2026-01-01T00:00:00Z"}`,
		"no modified":      `{"id":"X"}`,
		"bad range type":   `{"id":"X","modified":"2026-01-01T00:00:00Z","affected":[{"ranges":[{"type":"CALVER","events":[{"introduced":"0"}]}]}]}`,
		"two in one event": `{"id":"X","modified":"2026-01-01T00:00:00Z","affected":[{"ranges":[{"type":"SEMVER","events":[{"introduced":"0","fixed":"1.0"}]}]}]}`,
		"no introduced":    `{"id":"X","modified":"2026-01-01T00:00:00Z","affected":[{"ranges":[{"type":"SEMVER","events":[{"fixed":"1.0"}]}]}]}`,
		"no events":        `{"id":"X","modified":"2026-01-01T00:00:00Z","affected":[{"ranges":[{"type":"SEMVER","events":[]}]}]}`,
		"bad annotation":   `{"id":"X","modified":"2026-01-01T00:00:00Z","database_specific":{"llmfence":{"severity":"high","sevrity":"x"}}}`,
		"not json":         `{"id":`,
	} {
		if _, err := ParseRecord([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func writeZip(t *testing.T, path string, files map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestImportFileDirZip(t *testing.T) {
	p, _ := EmbeddedProducts()
	ctx := context.Background()

	in, err := Import(ctx, p, DefaultLimits, "testdata/exports/dir")
	if err != nil {
		t.Fatal(err)
	}
	src := in.Sources[0]
	if src.Read != 3 || src.Kept != 2 || src.Skipped != 2 {
		t.Errorf("dir: read %d kept %d skipped %d (errors %v), want 3, 2, 2", src.Read, src.Kept, src.Skipped, src.Errors)
	}
	if want := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC); !src.Date.Equal(want) {
		t.Errorf("dir: date %v, want the newest record read (%v), kept or not", src.Date, want)
	}

	in2, err := Import(ctx, p, DefaultLimits, "testdata/exports/array.json")
	if err != nil {
		t.Fatal(err)
	}
	if s := in2.Sources[0]; s.Read != 2 || s.Kept != 1 {
		t.Errorf("array: %+v", s)
	}

	dir := t.TempDir()
	zp := filepath.Join(dir, "export.zip")
	b, _ := os.ReadFile("testdata/exports/dir/GO-2025-3548.json")
	big := `{"id":"BIG","modified":"2026-01-01T00:00:00Z","details":"` + strings.Repeat("x", 2048) + `"}`
	writeZip(t, zp, map[string]string{"ID/GO-2025-3548.json": string(b), "index/db.json": `{"modified":"2026-05-21T00:00:00Z"}`, "README": "not json", "big.json": big})
	lim := DefaultLimits
	lim.MaxRecordBytes = 1024
	in3, err := Import(ctx, p, lim, zp)
	if err != nil {
		t.Fatal(err)
	}
	if s := in3.Sources[0]; s.Read != 1 || s.Kept != 1 || s.Skipped != 2 {
		t.Errorf("zip: %+v", s)
	}

	if _, err := Import(ctx, p, DefaultLimits, filepath.Join(dir, "missing.json")); err == nil {
		t.Errorf("a missing file imported")
	}
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	if _, err := Import(ctx, p, DefaultLimits, empty); err == nil || !strings.Contains(err.Error(), "no OSV records") {
		t.Errorf("an empty directory: %v", err)
	}
	lim = DefaultLimits
	lim.MaxFiles = 2
	if _, err := Import(ctx, p, lim, "testdata/exports/dir"); err == nil {
		t.Errorf("MaxFiles not enforced")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Import(cctx, p, DefaultLimits, "testdata/exports/dir"); err == nil {
		t.Errorf("a cancelled import succeeded")
	}
}

// TestSaveOpenRefreshes imports a newer record for an embedded
// vulnerability and checks that the scan then uses it, keeps the embedded
// severity where the import has none, and reports both dates.
func TestSaveOpenRefreshes(t *testing.T) {
	p, _ := EmbeddedProducts()
	in, err := Import(context.Background(), p, DefaultLimits, "testdata/exports/dir")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sub", "vulndb.json")
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	info, err := Save(path, in, false, now)
	if err != nil {
		t.Fatal(err)
	}
	if info.Records != 2 || !info.ImportedAt.Equal(now) {
		t.Errorf("info %+v", info)
	}
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var gz, vl *Vuln
	n := 0
	for _, v := range db.Vulns() {
		if v.ID == "CVE-2024-12886" {
			n++
			gz = &v
		}
		if v.ID == "CVE-2099-0001" {
			vl = &v
		}
	}
	if n != 1 || gz == nil || !gz.Imported || gz.record.ID != "GO-2025-3548" {
		t.Fatalf("CVE-2024-12886 not replaced by the import: %d entries, %+v", n, gz)
	}
	if r := gz.Check("0.4.0"); r.Affected {
		t.Errorf("0.4.0 still affected after the refresh")
	}
	if r := gz.Check("0.3.14"); !r.Affected || r.Fixed != "0.4.0" {
		t.Errorf("0.3.14: %+v", r)
	}
	if gz.Severity != service.SeverityHigh || !strings.Contains(gz.Score, "embedded entry") {
		t.Errorf("severity %s (%s), want the embedded entry's", gz.Severity, gz.Score)
	}
	if vl == nil || vl.Product != "vllm" || vl.Severity != service.SeverityMedium {
		t.Errorf("imported vLLM record: %+v", vl)
	}
	if r := vl.Check("0.20.5"); !r.Affected || r.Fixed != "0.21.0" {
		t.Errorf("imported range: %+v", r)
	}
	imp, ok := db.ImportedInfo()
	if !ok || imp.Date.Format("2006-01-02") != "2026-12-01" {
		t.Errorf("imported info %+v", imp)
	}
	if !strings.Contains(db.Describe(), "imported data of 2026-12-01") {
		t.Errorf("describe: %s", db.Describe())
	}
	// A second import merges; --replace starts over.
	in2, _ := Import(context.Background(), p, DefaultLimits, "testdata/exports/array.json")
	if info, _ := Save(path, in2, false, now); info.Records != 3 {
		t.Errorf("merge kept %d records, want 3", info.Records)
	}
	if info, _ := Save(path, in2, true, now); info.Records != 1 {
		t.Errorf("replace kept %d records, want 1", info.Records)
	}
	// No file: embedded data only.
	db2, err := Open(filepath.Join(t.TempDir(), "none.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := db2.ImportedInfo(); ok {
		t.Errorf("imported info without a file")
	}
	// A damaged file is an error, not silently ignored.
	os.WriteFile(path, []byte("{"), 0o600)
	if _, err := Open(path); err == nil {
		t.Errorf("a damaged store opened")
	}
}

func TestDefaultPath(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	home := func() (string, error) { return "/home/u", nil }
	tests := []struct {
		env  map[string]string
		goos string
		want string
	}{
		{map[string]string{EnvFile: "/x/v.json"}, "linux", "/x/v.json"},
		{map[string]string{"XDG_DATA_HOME": "/d"}, "linux", "/d/llmfence/vulndb.json"},
		{map[string]string{}, "linux", "/home/u/.local/share/llmfence/vulndb.json"},
		{map[string]string{}, "darwin", "/home/u/Library/Application Support/llmfence/vulndb.json"},
	}
	for _, tt := range tests {
		got, err := defaultPath(env(tt.env), tt.goos, home)
		if err != nil || got != tt.want {
			t.Errorf("%v %s: %q %v, want %q", tt.env, tt.goos, got, err, tt.want)
		}
	}
}

// FuzzParseRecord: any input either fails to parse or yields a record
// whose evaluation never panics, is deterministic, and never claims an
// unknown version.
func FuzzParseRecord(f *testing.F) {
	names, _ := fs.Glob(embeddedFS, "osv/*.json")
	for _, n := range names[:5] {
		b, _ := fs.ReadFile(embeddedFS, n)
		f.Add(b, "0.1.0")
	}
	f.Add([]byte(`{"id":"X","modified":"2026-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"vllm"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"limit":"1.0"}]}],"versions":["0.5"]}]}`), "0.5")
	p, _ := EmbeddedProducts()
	f.Fuzz(func(t *testing.T, b []byte, version string) {
		r, err := ParseRecord(b)
		if err != nil {
			return
		}
		for _, o := range []Ordering{OrderSemver, OrderPyPI, OrderBuild} {
			for i := range r.Affected {
				a := evaluate(&r.Affected[i], o, version)
				if a != evaluate(&r.Affected[i], o, version) {
					t.Fatalf("evaluation not deterministic")
				}
				if a.Affected && !o.valid(version) {
					t.Fatalf("unknown version %q claimed", version)
				}
				if a.Affected && !a.Comparable {
					t.Fatalf("affected but not comparable")
				}
			}
		}
		db, err := build(p, nil, []*Record{r}, &Info{})
		if err != nil {
			return
		}
		for _, v := range db.Vulns() {
			_ = v.RangesText()
			if v.Check("0.0.0").Affected {
				t.Fatalf("placeholder version claimed")
			}
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatal(err)
		}
		_ = fmt.Sprint(r.ID)
	})
}

// TestExportImportLossless exports the embedded data as OSV files and
// imports them again: every record comes back byte for byte, and gives
// the same verdicts.
func TestExportImportLossless(t *testing.T) {
	db := embedded(t)
	dir := t.TempDir()
	n, err := Export(db, dir)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(db.Records()) || n < 40 {
		t.Fatalf("exported %d of %d records", n, len(db.Records()))
	}
	p, _ := EmbeddedProducts()
	in, err := Import(context.Background(), p, DefaultLimits, dir)
	if err != nil {
		t.Fatal(err)
	}
	if in.Sources[0].Kept != n || in.Sources[0].Skipped != 0 {
		t.Fatalf("import kept %d, skipped %d of %d", in.Sources[0].Kept, in.Sources[0].Skipped, n)
	}
	orig := map[string][]byte{}
	for _, r := range db.Records() {
		orig[r.ID] = r.Raw
	}
	for _, r := range in.Records {
		if !bytes.Equal(r.Raw, orig[r.ID]) {
			t.Errorf("%s changed in the round trip", r.ID)
		}
	}
	path := filepath.Join(t.TempDir(), "vulndb.json")
	if _, err := Save(path, in, true, time.Now()); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range db2.Vulns() {
		if !v.Imported {
			t.Errorf("%s: not replaced by its own export", v.ID)
		}
		for _, version := range []string{"0.1.0", "0.5.9", "1.82.8", "b9060", "2.5", "0.34.2"} {
			var want Verdict
			for _, w := range db.Vulns() {
				if w.ID == v.ID && w.Product == v.Product {
					want = w.Check(version)
				}
			}
			if got := v.Check(version); got != want {
				t.Errorf("%s %s %s: %+v after the round trip, %+v before", v.ID, v.Product, version, got, want)
			}
		}
	}
}
