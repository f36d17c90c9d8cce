package store

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/service"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func loadServices(t *testing.T, path string) []service.Service {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []service.Service
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

// renderDiff is a stable text form of a Diff covering every field a
// renderer would use.
func renderDiff(d Diff) string {
	var b strings.Builder
	line := func(s service.Service) {
		fmt.Fprintf(&b, "  %s %s %q risk=%s\n", s.Key(), s.Product, s.Version, s.Risk)
	}
	fmt.Fprintf(&b, "appeared (%d):\n", len(d.Appeared))
	for _, s := range d.Appeared {
		line(s)
	}
	fmt.Fprintf(&b, "disappeared (%d):\n", len(d.Disappeared))
	for _, s := range d.Disappeared {
		line(s)
	}
	fmt.Fprintf(&b, "changed (%d):\n", len(d.Changed))
	for _, c := range d.Changed {
		if c.Key != c.After.Key() || c.Key != c.Before.Key() {
			fmt.Fprintf(&b, "  KEY MISMATCH %s %s %s\n", c.Key, c.Before.Key(), c.After.Key())
		}
		fmt.Fprintf(&b, "  %s\n", c.Key)
		for _, ch := range c.Changes {
			fmt.Fprintf(&b, "    %s subject=%q from=%q to=%q\n      %s\n", ch.Kind, ch.Subject, ch.From, ch.To, ch)
		}
	}
	return b.String()
}

// reversed returns a deep-enough copy with services, models and findings in
// reverse order: the diff must not depend on input order.
func reversed(in []service.Service) []service.Service {
	out := slices.Clone(in)
	slices.Reverse(out)
	for i := range out {
		out[i].Models = slices.Clone(out[i].Models)
		slices.Reverse(out[i].Models)
		out[i].Findings = slices.Clone(out[i].Findings)
		slices.Reverse(out[i].Findings)
	}
	return out
}

func TestDiffServicesGolden(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "diff", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no diff cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			a := loadServices(t, filepath.Join(dir, "a.json"))
			b := loadServices(t, filepath.Join(dir, "b.json"))
			got := renderDiff(DiffServices(a, b))
			golden := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if got != string(want) {
				t.Errorf("diff of %s:\n%s\nwant:\n%s", dir, got, want)
			}
			if again := renderDiff(DiffServices(reversed(a), reversed(b))); again != got {
				t.Errorf("diff depends on input order:\n%s\nvs\n%s", again, got)
			}
			// Swapping the runs swaps appeared and disappeared.
			back := DiffServices(b, a)
			fwd := DiffServices(a, b)
			if len(back.Appeared) != len(fwd.Disappeared) || len(back.Disappeared) != len(fwd.Appeared) ||
				len(back.Changed) != len(fwd.Changed) {
				t.Errorf("reverse diff is not symmetric: %d/%d/%d vs %d/%d/%d", len(back.Appeared), len(back.Disappeared),
					len(back.Changed), len(fwd.Disappeared), len(fwd.Appeared), len(fwd.Changed))
			}
		})
	}
}

func TestDiffServicesEmpty(t *testing.T) {
	d := DiffServices(nil, nil)
	if !d.Empty() {
		t.Errorf("DiffServices(nil, nil) not empty: %+v", d)
	}
	b, _ := json.Marshal(d)
	if !strings.Contains(string(b), `"appeared":[]`) || !strings.Contains(string(b), `"changed":[]`) {
		t.Errorf("empty diff JSON should carry empty lists, not null: %s", b)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://ann:pw@db:5432/x?sslmode=disable": "postgres://ann:xxxxx@db:5432/x?sslmode=disable",
		"postgresql://ann@db/x":                       "postgresql://ann@db/x",
		"/home/ann/llmfence.db":                       "/home/ann/llmfence.db",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
