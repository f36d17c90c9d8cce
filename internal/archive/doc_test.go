package archive

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestDocsListCatalogue keeps docs/containers.md in step with the catalogue.
func TestDocsListCatalogue(t *testing.T) {
	doc, err := os.ReadFile("../../docs/containers.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range catalogueForTest(t).Findings {
		row := fmt.Sprintf("| %s | %s | %s | %s |", e.ID, e.Severity, e.Verdict, e.Title)
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/containers.md lacks the row %q", row)
		}
	}
}
