package redact

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocUpToDate: docs/redaction.md is what the data generates, and lists
// every entry.
func TestDocUpToDate(t *testing.T) {
	r := newT(t)
	var buf bytes.Buffer
	if err := r.writeMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("..", "..", "docs", "redaction.md"), buf.Bytes())
	for _, id := range r.IDs() {
		if !strings.Contains(buf.String(), "\n## "+id+"\n") || !strings.Contains(buf.String(), "| [`"+id+"`]") {
			t.Errorf("doc lacks entry %s", id)
		}
	}
}
