package layering

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// maxCmdFuncLines is the longest a function in cmd/llmfence may be,
// counted from `func` to its closing brace: the command layer parses flags
// and wires capabilities together, and a longer function is doing the
// capability's work (issue 10).
const maxCmdFuncLines = 60

// longFlagConstructors are the constructors that only register flags
// (help text and one line per flag), kept whole so a command's flags read
// in one place; each may be at most its limit here.
var longFlagConstructors = map[string]int{
	"newProbeCmd":    80, // help text, then 30 flags
	"newInspectCmd":  72, // help text on formats, the Ollama store and exit statuses, then 8 flags
	"newAuditCmd":    65, // help text on what is read and sent, then 11 flags
	"newDatascanCmd": 65, // help text on detectors, inputs and exit statuses, then 15 flags
}

// TestCmdFunctionsAreShort fails when a non-test function in cmd/llmfence
// grows past maxCmdFuncLines (or an allowed constructor past its limit).
func TestCmdFunctionsAreShort(t *testing.T) {
	dir := filepath.Join("..", "..", "cmd", "llmfence")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	fset := token.NewFileSet()
	seen := map[string]bool{}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			name := funcName(fd)
			seen[name] = true
			n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
			limit := maxCmdFuncLines
			if l, ok := longFlagConstructors[name]; ok {
				limit = l
			}
			if n > limit {
				t.Errorf("%s: %s is %d lines (at most %d): move the work into its internal package or split it into named steps",
					filepath.Base(path), name, n, limit)
			}
		}
	}
	for name := range longFlagConstructors {
		if !seen[name] {
			t.Errorf("longFlagConstructors lists %s, which cmd/llmfence no longer has", name)
		}
	}
}

// funcName is "Recv.Name" for a method, else the function's name.
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	t := fd.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}
