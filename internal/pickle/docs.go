package pickle

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
)

//go:generate go test -run TestDocsUpToDate -update .

// writeDocs writes docs/pickle.md from the embedded lists and catalogue.
func writeDocs(w io.Writer) error {
	b := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	version, safe, dangerous := EmbeddedLists()
	p("# Pickle analysis (`llmfence inspect`)\n\n")
	p("<!-- Generated from internal/pickle/lists.yaml and internal/pickle/findings.yaml by `go generate ./internal/pickle`. Do not edit by hand; a test fails when it is stale. -->\n\n")
	p("A pickle file is a program for a small stack machine. Loading it imports the callables it names ")
	p("(opcodes GLOBAL, INST, STACK_GLOBAL, EXT1/2/4) and calls them (REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ, BUILD via `__setstate__`). ")
	p("llmfence never runs that program. It decodes every opcode of protocols 0 to 5, keeps a bounded symbolic stack and memo ")
	p("so that the module and name of every import are known even when STACK_GLOBAL takes them from the memo, and judges each import:\n\n")
	p("1. **Dangerous** (deny-list below): the file is *malicious* (PKL-001).\n")
	p("2. **Safe** (allow-list below, exact names only): nothing to report.\n")
	p("3. **Anything else**: *suspicious* (PKL-002), and calling it is PKL-004. An import whose module or name is not a constant string is PKL-003.\n\n")
	p("The allow-list is deliberately small: only what ordinary `torch.save` state dicts and NumPy array pickles emit. ")
	p("A full-model pickle (`torch.save(model)`) imports the model's own classes and is therefore suspicious: ")
	p("that is correct, loading it runs those classes' code.\n\n")
	p("Deny-list entries match the name and everything below it at a dot boundary (`os` matches `os.path.join`, not `ossify`). ")
	p("Dotted attribute paths (protocol 4 resolves `torch` + `os.system` as `torch.os.system`) are checked after every dot, and any ")
	p("dunder attribute in the path (`__globals__`, `__builtins__`) is dangerous. Python 2 module names are also checked under the ")
	p("name pickle's `fix_imports` maps them to (`__builtin__` -> `builtins`, `commands` -> `subprocess`, ...).\n\n")
	p("The analysis keeps going past a broken stream and reports what came before the break: a dangerous import followed by a ")
	p("broken tail is the nullifAI pattern (PKL-009). After a STOP it looks for further concatenated streams (PyTorch legacy files hold several). ")
	p("Every length, count, stack, memo, nesting level and the opcode total are bounded.\n\n")
	p("Lists version %d.\n\n", version)
	p("## Deny-list (%d entries)\n\n| Name | Why |\n|---|---|\n", len(dangerous))
	for _, e := range dangerous {
		p("| `%s` | %s |\n", e.Name, cell(e.Why))
	}
	p("\n## Allow-list (%d entries)\n\n| Name | Why |\n|---|---|\n", len(safe))
	for _, e := range safe {
		p("| `%s` | %s |\n", e.Name, cell(e.Why))
	}
	p("\n## Python 2 module names\n\n| Name in the pickle | Classified also as |\n|---|---|\n")
	names := make([]string, 0, len(lists.Compat))
	for k := range lists.Compat {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		p("| `%s` | `%s` |\n", k, lists.Compat[k])
	}
	d := Options{}.withDefaults()
	p("\n## Limits\n\nDefaults of `pickle.Options`; exceeding one is PKL-011 (or PKL-012 for nesting) and the rest of the file is not analysed.\n\n")
	p("| Limit | Default |\n|---|---|\n")
	p("| Opcodes over all streams | %d |\n| Symbolic stack entries | %d |\n| Memo entries | %d |\n| Concatenated streams | %d |\n| Nesting depth | %d |\n", d.MaxOpcodes, d.MaxStack, d.MaxMemo, d.MaxStreams, d.MaxDepth)
	p("| String bytes kept per operand (longer strings are not statically known) | %d |\n| String bytes kept in the memo | %d |\n", keepString, maxRetained)
	p("\nClaimed lengths are never allocated: string and bytes operands are skipped while streaming, so a 2^62-byte claim in a 100-byte file costs nothing and ends as PKL-008.\n")
	p("\n## Findings (catalogue version %d)\n\n", Catalogue().Version)
	for _, e := range Catalogue().Findings {
		p("### %s %s\n\n- Severity: %s\n- Verdict: %s\n\n%s\n\nFix: %s\n\n", e.ID, e.Title, e.Severity, e.Verdict, e.Why, e.Fix)
	}
	if err := b.Flush(); err != nil {
		return fmt.Errorf("writing pickle docs: %w", err)
	}
	return nil
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
