// Package pythontest runs the reference implementations llmfence's parsers
// must agree with — CPython's pickle and json, NumPy, Jinja2 — for
// differential tests. It finds the system interpreter (/usr/bin/python3,
// where Debian's python3-numpy and python3-jinja2 install; a `python3` on
// PATH may be a pyenv shim without them), checks the modules a test needs,
// and skips the test when they are missing — except under CI (CI set),
// where a missing reference is a failure.
//
// Batch runs a script that reads one JSON object per line on standard
// input and writes one JSON object per line on standard output, so that a
// test can ask thousands of questions for one interpreter start.
package pythontest

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Interpreter is the system Python 3 the reference modules live in.
const Interpreter = "/usr/bin/python3"

// Env overrides Interpreter (for machines that keep it elsewhere).
const Env = "LLMFENCE_PYTHON3"

// Need returns the interpreter path when it exists and imports every module
// in modules; otherwise it skips t, or fails it when CI is set.
func Need(t testing.TB, modules ...string) string {
	t.Helper()
	py := Interpreter
	if v := os.Getenv(Env); v != "" {
		py = v
	}
	miss := func(format string, a ...any) string {
		t.Helper()
		msg := fmt.Sprintf(format, a...) + " (Debian: apt-get install python3 python3-numpy python3-jinja2)"
		if os.Getenv("CI") != "" {
			t.Fatalf("reference implementation missing under CI: %s", msg)
		}
		t.Skip(msg)
		return ""
	}
	if _, err := os.Stat(py); err != nil {
		return miss("no %s: %v", py, err)
	}
	if len(modules) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, py, "-c", "import "+strings.Join(modules, ", ")).CombinedOutput()
		if err != nil {
			return miss("%s cannot import %s: %v: %s", py, strings.Join(modules, ", "), err, bytes.TrimSpace(out))
		}
	}
	return py
}

// Batch runs script (Python source) with py, feeding it each request as
// one JSON line, and returns one decoded response per request, in order.
// A script that fails, or answers with a different number of lines, fails
// the test.
func Batch[Req, Resp any](t testing.TB, py, script string, reqs []Req) []Resp {
	t.Helper()
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for _, r := range reqs {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-I", "-c", script)
	cmd.Stdin = &in
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	// No network, no user site: the scripts only parse what they are given.
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", "PYTHONHASHSEED=0"}
	if err := cmd.Run(); err != nil {
		t.Fatalf("reference script failed: %v\n%s", err, errb.String())
	}
	var resps []Resp
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var r Resp
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("reference answer %q: %v", clip(sc.Text()), err)
		}
		resps = append(resps, r)
	}
	if len(resps) != len(reqs) {
		t.Fatalf("reference answered %d of %d requests\n%s", len(resps), len(reqs), errb.String())
	}
	return resps
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

//go:embed oracles/*.py
var oracles embed.FS

// Oracle returns the source of a reference script in oracles/ ("pickle",
// "npy", "json", "jinja").
func Oracle(name string) string {
	b, err := oracles.ReadFile("oracles/" + name + ".py")
	if err != nil {
		panic("pythontest: no oracle " + name)
	}
	return string(b)
}
