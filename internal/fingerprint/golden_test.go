package fingerprint

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/goldentest"
	"github.com/llmfence/llmfence/internal/service"
)

var fixedNow = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func testProber(t *testing.T, opts Options) *Prober {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 3 * time.Second
	}
	if opts.TargetBudget == 0 {
		opts.TargetBudget = 20 * time.Second
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	p.now = func() time.Time { return fixedNow }
	return p
}

// normalise removes what depends on the test server's random port.
func normalise(s *service.Service) []byte {
	c := *s
	port := strconv.Itoa(c.Port)
	c.Port = 0
	c.URL = strings.Replace(c.URL, ":"+port, ":PORT", 1)
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

func caseFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/cases/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test cases: %v", err)
	}
	return files
}

// TestGolden runs every recorded-shape server through a passive probe and
// compares the whole record with its golden file.
func TestGolden(t *testing.T) {
	for _, file := range caseFiles(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			c := loadCase(t, file)
			srv := serveCase(t, c, true)
			p := testProber(t, Options{})
			s, err := p.Probe(context.Background(), srv.addrPort(t), "", false, nil)
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if s.Product != c.ExpectProduct {
				t.Errorf("product = %q, want %q; evidence:\n%s", s.Product, c.ExpectProduct, strings.Join(s.Evidence, "\n"))
			}
			got := normalise(s)
			goldentest.Check(t, filepath.Join("testdata", "golden", name+".json"), got)
		})
	}
}

// TestEveryProductHasACase keeps the catalogue and the recorded shapes in
// step: each fingerprint entry is exercised by at least one case.
func TestEveryProductHasACase(t *testing.T) {
	cat, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, f := range caseFiles(t) {
		covered[loadCase(t, f).ExpectProduct] = true
	}
	for _, p := range cat.Products {
		if !covered[p.ID] {
			t.Errorf("product %q has no testdata/cases entry", p.ID)
		}
	}
	if !covered["http"] {
		t.Error("no negative case expects product http")
	}
}
