package pickle

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/pythontest"
	"github.com/llmfence/llmfence/internal/verdict"
)

type oracleReq struct {
	Data    string `json:"data"`
	Streams int    `json:"streams"`
}

type oracleResp struct {
	Imports [][2]string `json:"imports"`
	Calls   int         `json:"calls"`
	Streams int         `json:"streams"`
	Error   *string     `json:"error"`
	End     int64       `json:"end"`
}

// AskCPython returns what CPython's unpickler does with each input.
func askCPython(t *testing.T, cases []pythontest.PickleCase) []oracleResp {
	t.Helper()
	py := pythontest.Need(t)
	reqs := make([]oracleReq, len(cases))
	for i, c := range cases {
		reqs[i] = oracleReq{Data: base64.StdEncoding.EncodeToString(c.Data), Streams: 32}
	}
	return pythontest.Batch[oracleReq, oracleResp](t, py, pythontest.Oracle("pickle"), reqs)
}

// disagreement says how Scan's result fails what CPython did, "" if it
// does not: every import CPython's unpickler asked for is reported (or an
// unresolvable import is), a file that imports is never clean, and a
// dangerous import makes it malicious.
func disagreement(res *Result, ref oracleResp) string {
	ours := map[[2]string]bool{}
	unresolved := false
	for _, g := range res.Globals {
		if g.Unresolved {
			unresolved = true
			continue
		}
		ours[[2]string{g.Module, g.Name}] = true
	}
	var problems []string
	for _, imp := range ref.Imports {
		// The stub find_class accepts any name; a real import of a name
		// that is not a dotted identifier fails before anything runs.
		if !identifierPath(imp[0]) || !identifierPath(imp[1]) {
			continue
		}
		if !ours[imp] && !unresolved {
			problems = append(problems, fmt.Sprintf("CPython imports %s.%s, llmfence does not see it", imp[0], imp[1]))
		}
		if c := classifyOrPanic(imp[0], imp[1]); c == Dangerous && res.Verdict() != verdict.Malicious {
			problems = append(problems, fmt.Sprintf("CPython imports dangerous %s.%s, verdict %s", imp[0], imp[1], res.Verdict()))
		}
	}
	if importsUnsafe(ref.Imports) && res.Verdict() == verdict.Clean {
		problems = append(problems, "CPython imports callables, verdict clean")
	}
	return strings.Join(problems, "; ")
}

// TestDifferentialCPython generates pickles (every payload behind every
// opening opcode, framed, concatenated, broken, then random mutations),
// asks CPython's own unpickler what it imports, and fails on any import
// Scan misses or misjudges.
func TestDifferentialCPython(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 300
	}
	cases := pythontest.PickleCases(1, n)
	for _, c := range corpus() {
		cases = append(cases, pythontest.PickleCase{Name: "corpus/" + c.name, Data: c.data})
	}
	refs := askCPython(t, cases)
	bad := 0
	for i, c := range cases {
		res, err := Scan(context.Background(), bytes.NewReader(c.Data), Options{})
		if err != nil {
			t.Fatal(err)
		}
		d := disagreement(res, refs[i])
		// Sniffing cannot be dodged: content on which CPython imports and
		// calls a callable off the allow-list is a pickle, whatever it
		// starts with.
		if refs[i].Calls > 0 && importsUnsafe(refs[i].Imports) && !Sniff(context.Background(), bytes.NewReader(c.Data), int64(len(c.Data))) {
			d = strings.TrimPrefix(d+"; Sniff says it is not a pickle", "; ")
		}
		if d != "" {
			bad++
			if bad <= 15 {
				t.Errorf("%s %q: %s (CPython error: %v)", c.Name, clipq(c.Data), d, deref(refs[i].Error))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d inputs disagree with CPython", bad, len(cases))
	}
}

func deref(s *string) string {
	if s == nil {
		return "none"
	}
	return *s
}

func clipq(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// importsUnsafe: an import of a real name off the allow-list.
func importsUnsafe(imps [][2]string) bool {
	for _, imp := range imps {
		if c := classifyOrPanic(imp[0], imp[1]); c != Safe && identifierPath(imp[0]) && identifierPath(imp[1]) {
			return true
		}
	}
	return false
}
