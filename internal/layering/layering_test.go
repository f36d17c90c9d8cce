package layering

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/goldentest"
)

const module = "github.com/llmfence/llmfence/"

// pkg is one package of the module as go list sees it.
type pkg struct {
	path    string // without the module prefix: "internal/scan"
	name    string // the package clause: "scan", "main"
	imports []string
}

// listPackages lists the module's packages and their imports of the
// module's own packages (tests' imports not included).
func listPackages(t *testing.T) []pkg {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH")
	}
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{.Name}} {{join .Imports " "}}`, module+"...")
	cmd.Dir = filepath.Join("..", "..")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	var pkgs []pkg
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			t.Fatalf("go list line %q", line)
		}
		p := pkg{path: strings.TrimPrefix(f[0], module), name: f[1]}
		for _, imp := range f[2:] {
			if rest, ok := strings.CutPrefix(imp, module); ok {
				p.imports = append(p.imports, rest)
			}
		}
		pkgs = append(pkgs, p)
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].path < pkgs[j].path })
	return pkgs
}

// isTestHelper: a package named for tests (ollamatest, goldentest, ...).
func isTestHelper(path string) bool { return strings.HasSuffix(filepath.Base(path), "test") }

func under(path string, roots ...string) bool {
	for _, r := range roots {
		if path == r || strings.HasPrefix(path, r+"/") {
			return true
		}
	}
	return false
}

var (
	vocabulary = map[string][]string{ // package -> the internal packages it may import
		"internal/service":  nil,
		"internal/version":  nil,
		"internal/datafile": nil,
		"internal/locale":   nil,
		"internal/verdict":  {"internal/service", "internal/datafile"},
	}
	// upper are the judges and orchestrators, and who else of them each
	// may import.
	upper = map[string][]string{
		"internal/risk":    nil,
		"internal/scan":    nil,
		"internal/inspect": {"internal/risk"},
		"internal/audit":   {"internal/risk", "internal/inspect"},
		"internal/guard":   nil,
	}
)

// violations checks the rules of the package doc.
func violations(pkgs []pkg) []string {
	var bad []string
	say := func(format string, a ...any) { bad = append(bad, fmt.Sprintf(format, a...)) }
	for _, p := range pkgs {
		for _, imp := range p.imports {
			switch {
			case under(p.path, "internal") && under(imp, "cmd", "bench"):
				say("rule 1: %s imports the command or benchmark %s", p.path, imp)
			case isTestHelper(imp) && !isTestHelper(p.path) && p.name != "main":
				say("rule 2: production package %s imports the test helper %s", p.path, imp)
			}
			if allowed, ok := vocabulary[p.path]; ok && !slices.Contains(allowed, imp) {
				say("rule 3: the vocabulary package %s imports %s", p.path, imp)
			}
			if u := upperOf(imp); u != "" && !mayImportUpper(p.path, u) {
				say("rule 4: %s imports %s, a judge or orchestrator above it", p.path, imp)
			}
			if p.path == "internal/scan" && imp != "internal/service" {
				say("rule 5: scan imports %s; it takes what it needs through interfaces", imp)
			}
		}
	}
	return bad
}

// upperOf returns the judge or orchestrator imp belongs to ("" for none).
// guard's subpackages (keys, limits, ...) are its parts, below it.
func upperOf(imp string) string {
	if _, ok := upper[imp]; ok {
		return imp
	}
	return ""
}

func mayImportUpper(from, u string) bool {
	switch {
	case under(from, "cmd", "bench"):
		return true
	case from == u:
		return true
	case from == "internal/guard/authn" && u == "internal/guard":
		return true
	}
	if allowed, ok := upper[from]; ok {
		return slices.Contains(allowed, u)
	}
	// Packages the rules do not place are above the lower layers only if
	// nothing of the lower layers is them: a known lower package may not.
	return !lower(from)
}

// lower are the packages below the judges and orchestrators: the
// vocabulary, the parsers and data packages, the store and guard's parts.
// The renderers (report) sit above the judges: they say what those found.
func lower(path string) bool {
	if _, ok := vocabulary[path]; ok {
		return true
	}
	if isTestHelper(path) {
		return true
	}
	switch {
	case under(path, "internal/guard") && path != "internal/guard" && path != "internal/guard/authn":
		return true
	}
	return slices.Contains([]string{
		"internal/archive", "internal/classify", "internal/fingerprint", "internal/gguf",
		"internal/gibberish", "internal/lab", "internal/pickle", "internal/redact",
		"internal/safetensors", "internal/store", "internal/targets", "internal/vulndb",
	}, path)
}

func TestLayering(t *testing.T) {
	for _, v := range violations(listPackages(t)) {
		t.Error(v)
	}
}

// TestRulesCatchViolations: each rule fails a graph that breaks it.
func TestRulesCatchViolations(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    pkg
		rule string
	}{
		{"internal imports cmd", pkg{path: "internal/report", name: "report", imports: []string{"cmd/llmfence"}}, "rule 1"},
		{"production imports a test helper", pkg{path: "internal/inspect", name: "inspect", imports: []string{"internal/ollamatest"}}, "rule 2"},
		{"vocabulary reaches up", pkg{path: "internal/service", name: "service", imports: []string{"internal/targets"}}, "rule 3"},
		{"parser imports the judge", pkg{path: "internal/pickle", name: "pickle", imports: []string{"internal/risk"}}, "rule 4"},
		{"store imports scan", pkg{path: "internal/store", name: "store", imports: []string{"internal/scan"}}, "rule 4"},
		{"risk imports inspect", pkg{path: "internal/risk", name: "risk", imports: []string{"internal/inspect"}}, "rule 4"},
		{"scan imports fingerprint", pkg{path: "internal/scan", name: "scan", imports: []string{"internal/fingerprint"}}, "rule 5"},
	} {
		v := violations([]pkg{tc.p})
		if len(v) == 0 || !strings.HasPrefix(v[0], tc.rule) {
			t.Errorf("%s: violations %q, want %s", tc.name, v, tc.rule)
		}
	}
	ok := []pkg{
		{path: "cmd/llmfence", name: "main", imports: []string{"internal/scan", "internal/guard"}},
		{path: "internal/audit", name: "audit", imports: []string{"internal/inspect", "internal/risk", "internal/fingerprint"}},
		{path: "internal/gibberish/internal/gen", name: "main", imports: []string{"internal/gibberish/gibberishtest"}},
		{path: "internal/ollamatest", name: "ollamatest", imports: []string{"internal/ggufmodeltest"}},
		{path: "internal/newthing", name: "newthing", imports: []string{"internal/scan", "internal/risk"}},
		{path: "internal/report", name: "report", imports: []string{"internal/risk", "internal/inspect"}},
	}
	if v := violations(ok); len(v) > 0 {
		t.Errorf("allowed imports refused: %q", v)
	}
}

// graph renders the import graph: each package and the module packages it
// imports.
func graph(pkgs []pkg) string {
	var b strings.Builder
	b.WriteString("```\n")
	for _, p := range pkgs {
		fmt.Fprintf(&b, "%s", p.path)
		if len(p.imports) > 0 {
			fmt.Fprintf(&b, " → %s", strings.Join(p.imports, ", "))
		}
		b.WriteString("\n")
	}
	b.WriteString("```\n")
	return b.String()
}

const (
	beginGraph = "<!-- import graph: generated by go test ./internal/layering -update -->\n"
	endGraph   = "<!-- end of import graph -->\n"
)

// TestArchitectureDocGraph keeps the generated import graph in
// docs/architecture.md current.
func TestArchitectureDocGraph(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "architecture.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	i, j := strings.Index(s, beginGraph), strings.Index(s, endGraph)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the import graph markers", path)
	}
	want := s[:i+len(beginGraph)] + graph(listPackages(t)) + s[j:]
	goldentest.Check(t, path, []byte(want))
}
