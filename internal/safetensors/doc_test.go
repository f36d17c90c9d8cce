package safetensors

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestDocsListCatalogues keeps docs/containers.md in step with the catalogues.
func TestDocsListCatalogues(t *testing.T) {
	doc, err := os.ReadFile("../../docs/containers.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, cat := range catalogues(t) {
		for _, e := range cat.Findings {
			row := fmt.Sprintf("| %s | %s | %s | %s |", e.ID, e.Severity, e.Verdict, e.Title)
			if !strings.Contains(string(doc), row) {
				t.Errorf("docs/containers.md lacks the row %q", row)
			}
		}
	}
}
