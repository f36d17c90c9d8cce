package inspect

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"unicode"

	"github.com/llmfence/llmfence/internal/pickle"
	"github.com/llmfence/llmfence/internal/pythontest"
	"github.com/llmfence/llmfence/internal/verdict"
)

type pickleReq struct {
	Data    string `json:"data"`
	Streams int    `json:"streams"`
}

type pickleResp struct {
	Imports [][2]string `json:"imports"`
	Calls   int         `json:"calls"`
}

func identifier(s string) bool {
	for _, p := range strings.Split(s, ".") {
		if p == "" || !(unicode.IsLetter(rune(p[0])) || p[0] == '_') {
			return false
		}
		for _, r := range p {
			if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_') {
				return false
			}
		}
	}
	return true
}

// TestDifferentialSniffCPython: whatever a pickle starts with and however
// it is named, a file on which CPython's unpickler imports and calls a
// callable is inspected as a pickle: a dangerous import makes it
// malicious, any import off the allow-list keeps it from being clean.
// The files have a name no loader convention covers, so this is the
// sniffer's own judgement.
func TestDifferentialSniffCPython(t *testing.T) {
	py := pythontest.Need(t)
	n := 800
	if testing.Short() {
		n = 200
	}
	cases := pythontest.PickleCases(3, n)
	reqs := make([]pickleReq, len(cases))
	for i, c := range cases {
		reqs[i] = pickleReq{Data: base64.StdEncoding.EncodeToString(c.Data), Streams: 32}
	}
	refs := pythontest.Batch[pickleReq, pickleResp](t, py, pythontest.Oracle("pickle"), reqs)
	dir := t.TempDir()
	in := newTestInspector(t, nil, nil)
	bad := 0
	for i, c := range cases {
		ref := refs[i]
		if ref.Calls == 0 {
			continue
		}
		dangerous, unsafe := false, false
		for _, imp := range ref.Imports {
			if !identifier(imp[0]) || !identifier(imp[1]) {
				continue
			}
			cls, _, err := pickle.Classify(imp[0], imp[1])
			if err != nil {
				t.Fatal(err)
			}
			switch cls {
			case pickle.Dangerous:
				dangerous, unsafe = true, true
			case pickle.Unknown:
				unsafe = true
			}
		}
		if !unsafe {
			continue
		}
		p := writeFile(t, dir, fmt.Sprintf("case%05d.xyz", i), c.Data)
		r := in.InspectFile(context.Background(), p, "")
		var problem string
		switch {
		case dangerous && r.Verdict != verdict.Malicious:
			problem = fmt.Sprintf("CPython runs a dangerous import; inspected as %s, %s", r.Format, r.Verdict)
		case r.Verdict == verdict.Clean || r.Verdict == verdict.NotInspected:
			problem = fmt.Sprintf("CPython imports and calls code; inspected as %s, %s", r.Format, r.Verdict)
		}
		if problem != "" {
			bad++
			if bad <= 10 {
				t.Errorf("%s %q: %s", c.Name, c.Data[:min(len(c.Data), 80)], problem)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d files disagree", bad)
	}
}
