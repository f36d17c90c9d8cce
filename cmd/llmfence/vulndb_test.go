package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/report"
	"github.com/llmfence/llmfence/internal/vulndb"
)

// TestVulnDBImportAndList imports a directory export, then checks that
// list shows the imported record, the dates, and that a scan's judge uses
// the refreshed data.
func TestVulnDBImportAndList(t *testing.T) {
	store := filepath.Join(t.TempDir(), "vulndb.json")
	t.Setenv(vulndb.EnvFile, store)

	out, errOut, code := runCLI(t, "", "vulndb", "list")
	if code != 0 || !strings.Contains(out, "Vulnerability data as of ") || !strings.Contains(out, "imported: none") {
		t.Fatalf("list before import (exit %d): %s %s", code, out, errOut)
	}
	if !strings.Contains(out, "CVE-2026-103663") || !strings.Contains(out, "all versions (no fix yet)") {
		t.Errorf("list lacks the embedded records:\n%s", out)
	}

	out, errOut, code = runCLI(t, "", "vulndb", "import", "../../internal/vulndb/testdata/exports/dir")
	if code != 0 || !strings.Contains(out, "3 OSV records read, 2 for llmfence products, 2 files skipped") ||
		!strings.Contains(out, "saved 2 records to "+store) {
		t.Fatalf("import (exit %d): %s %s", code, out, errOut)
	}

	out, _, code = runCLI(t, "", "vulndb", "list", "--format", "json", "--product", "ollama")
	if code != 0 {
		t.Fatalf("list json exit %d", code)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var l report.VulnRecord
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("not JSON Lines: %q: %v", line, err)
		}
		if l.Product != "ollama" || l.DataDate == "" {
			t.Errorf("line %+v", l)
		}
		if l.ID == "CVE-2024-12886" {
			found = true
			if l.Origin != "imported" || l.Affected != "< 0.4.0" {
				t.Errorf("CVE-2024-12886 after import: %+v", l)
			}
		}
	}
	if !found {
		t.Errorf("CVE-2024-12886 missing from the list")
	}

	j, err := newJudge()
	if err != nil {
		t.Fatal(err)
	}
	if imp, ok := j.VulnData().ImportedInfo(); !ok || imp.Records != 2 {
		t.Errorf("the scan's judge does not use the imported data")
	}

	if _, _, code := runCLI(t, "", "vulndb", "import", filepath.Join(t.TempDir(), "missing")); code == 0 {
		t.Errorf("importing a missing path succeeded")
	}
	if _, _, code := runCLI(t, "", "vulndb", "import"); code == 0 {
		t.Errorf("import without a path succeeded")
	}
}
