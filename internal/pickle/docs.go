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
	d, err := loaded()
	if err != nil {
		return err
	}
	lists, cat := d.lists, d.cat
	version, safe, dangerous, err := EmbeddedLists()
	if err != nil {
		return err
	}
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
	p("broken tail is the nullifAI pattern (PKL-009). After a STOP it decodes whatever follows as a further stream, as a loader that calls ")
	p("`pickle.load` again does (PyTorch legacy files hold five); bytes that break before importing anything are trailing data (PKL-013). ")
	p("Every length, count, stack, memo, nesting level and the opcode total are bounded.\n\n")
	p("## Reading it as the loaders read it\n\n")
	p("The decoder follows CPython's C unpickler reading a file (pickle.load, torch.load, joblib.load, numpy.load), and a differential test holds it to that unpickler ")
	p("on thousands of generated and mutated streams:\n\n")
	p("- any opcode may come first; `PROTO` 0 to 5; `FRAME` anywhere;\n")
	p("- `FLOAT` lines as `PyOS_string_to_double` reads them (signed `nan` and `inf` in any case, overflow refused), and as the pure-Python unpickler joblib uses reads them (white space, underscores); ")
	p("`INT` as C `strtol` base 0, else Python's `int(x, 0)`; `LONG` with one trailing `L` dropped; `PUT`/`GET` as `int(x)`;\n")
	p("- a read that crosses the end of a `FRAME` skips the rest of the frame and takes its bytes from after it, as the C unpickler does on a file ")
	p("(bytes objects are copied across); `pickle.loads` on bytes ignores frames, so such a stream is read both ways and reported (PKL-015);\n")
	p("- a `FRAME` or a string longer than the data is refused at once when the input size is known;\n")
	p("- `joblib.numpy_pickle.NumpyArrayWrapper`: after the BUILD that sets its state, joblib reads the array's raw bytes (after an alignment ")
	p("padding byte when the state says so) straight from the file; they are skipped by the length shape × dtype gives, and an object array is ")
	p("read as the complete nested pickle joblib loads in its place;\n")
	p("- `torch.storage._load_from_bytes(b)` loads a torch archive from `b`: called with literal bytes (`BINBYTES`, or `_codecs.encode(s, 'latin1')` ")
	p("in protocols 0-2) the range is returned in `Result.Embedded` for the caller to inspect as an archive of its own, and the call is judged by ")
	p("what that archive holds; imported for anything else it is dangerous;\n")
	p("- the `storages` and `tensors` members of a legacy torch tar checkpoint hold pickles between raw storage data: `ScanLayout` reads them ")
	p("as torch does, skipping the raw bytes by the sizes the records declare.\n\n")
	p("`Sniff` decides whether content is a pickle by decoding it the same way: it is one when a callable is imported and called, when the first ")
	p("stream ends with STOP after at least three opcodes (or is the whole content), or when nothing breaks in the first 4 MiB.\n\n")
	p("## Deny-list derived from what executes\n\n")
	p("The hand-written lists below are complemented by `internal/pickle/derived.txt`, generated by `internal/pickle/gen/reach.py` ")
	p("from the standard library of the interpreter that loads pickles (Python %s here): it imports every standard-library module and, ", lists.derived.python)
	p("without calling anything, follows each callable's bytecode (global names, attribute chains on modules and classes, imports inside functions, ")
	p("and method names linked to the methods of that name in the same module) to the primitives that run code or commands: ")
	p("`eval`, `exec`, `compile`, `__import__`, `breakpoint`, the `os.system`/`exec*`/`spawn*`/`posix_spawn`/`fork` family, ")
	p("`_posixsubprocess.fork_exec`, `marshal` and `pickle` loads, `dlopen`, new threads. A class counts through `__new__`, `__init__`, `__setstate__` and `__call__`. ")
	p("%d callables reach one (for example `typing.get_type_hints` reaches `eval` through `ForwardRef._evaluate`; `platform.architecture` and ", len(lists.derived.reach))
	p("`ctypes.util.find_library` start processes); importing any of them is PKL-001. ")
	p("The same file lists %d module attributes that are modules, so that a dotted name is judged as what it is: ", len(lists.derived.aliases))
	p("`random._os.system` is `os.system`, `tempfile._os.path.os.system` too. ")
	p("`go test ./internal/pickle -run TestDerivedListCurrent` regenerates it with `/usr/bin/python3` and fails when the embedded copy is stale (`-update` rewrites it).\n\n")
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
	lim := Options{}.withDefaults()
	p("\n## Limits\n\nDefaults of `pickle.Options`; exceeding one is PKL-011 (or PKL-012 for nesting) and the rest of the file is not analysed.\n\n")
	p("| Limit | Default |\n|---|---|\n")
	p("| Opcodes over all streams | %d |\n| Symbolic stack entries | %d |\n| Memo entries | %d |\n| Concatenated streams | %d |\n| Nesting depth | %d |\n", lim.MaxOpcodes, lim.MaxStack, lim.MaxMemo, lim.MaxStreams, lim.MaxDepth)
	p("| String bytes kept per operand (longer strings are not statically known) | %d |\n| String bytes kept in the memo | %d |\n", keepString, maxRetained)
	p("\nClaimed lengths are never allocated: string and bytes operands are skipped while streaming, so a 2^62-byte claim in a 100-byte file costs nothing and ends as PKL-008.\n")
	p("\n## Findings (catalogue version %d)\n\n", cat.Version)
	for _, e := range cat.Findings {
		p("### %s %s\n\n- Severity: %s\n- Verdict: %s\n\n%s\n\nFix: %s\n\n", e.ID, e.Title, e.Severity, e.Verdict, e.Why, e.Fix)
	}
	if err := b.Flush(); err != nil {
		return fmt.Errorf("writing pickle docs: %w", err)
	}
	return nil
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
