package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

// backend makes fresh, independent databases for the shared suite.
type backend struct {
	// newDSN returns the DSN of a new, empty database (or schema).
	newDSN func(t *testing.T) string
	// raw runs SQL directly against the database behind dsn, bypassing
	// the store (to plant a future schema version).
	raw func(t *testing.T, dsn, query string)
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var t0 = time.Date(2026, 11, 23, 16, 15, 0, 0, time.UTC)

func openT(t *testing.T, dsn string, opts Options) Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := OpenWith(context.Background(), dsn, opts)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func svc(host string, port int, product, version string, risk service.Severity) service.Service {
	return service.Service{
		Host: host, Port: port, URL: fmt.Sprintf("http://%s:%d", host, port),
		Product: product, Version: version, Auth: service.AuthNone, Risk: risk,
		Models:    []service.Model{},
		Findings:  []service.Finding{},
		ScannedAt: t0,
	}
}

func withFindings(s service.Service, fs ...service.Finding) service.Service {
	s.Findings = fs
	return s
}

func finding(id string, sev service.Severity) service.Finding {
	return service.Finding{ID: id, Severity: sev, Title: "title of " + id, Detail: "detail of " + id}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testStore is the behavioural suite every back end must pass.
func testStore(t *testing.T, be backend) {
	ctx := context.Background()

	t.Run("run lifecycle", func(t *testing.T) {
		clk := &fakeClock{t: t0.Add(123456789 * time.Nanosecond)}
		s := openT(t, be.newDSN(t), Options{Now: clk.Now})
		r, err := s.CreateRun(ctx, Run{ID: "999", Status: StatusFinished, Targets: []string{"10.0.0.0/24", "gpu.example"},
			Ports: "11434,8000-8010", Args: []string{"llmfence", "scan", "10.0.0.0/24"}, ToolVersion: "0.1.0"})
		if err != nil {
			t.Fatal(err)
		}
		if r.ID == "" || r.ID == "999" {
			t.Fatalf("CreateRun must assign its own ID, got %q", r.ID)
		}
		if r.Status != StatusRunning {
			t.Errorf("status = %q, want running", r.Status)
		}
		wantStart := t0.Add(123456 * time.Microsecond)
		if !r.StartedAt.Equal(wantStart) {
			t.Errorf("StartedAt = %v, want %v (clock truncated to µs)", r.StartedAt, wantStart)
		}
		got, err := s.GetRun(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if mustJSON(t, got) != mustJSON(t, r) {
			t.Errorf("GetRun = %s\nwant %s", mustJSON(t, got), mustJSON(t, r))
		}
		if err := s.SaveServices(ctx, r.ID, []service.Service{
			svc("10.0.0.1", 11434, "ollama", "0.5.1", service.SeverityCritical),
			svc("10.0.0.2", 11434, "ollama", "0.5.1", service.SeverityCritical),
			svc("10.0.0.3", 8000, "vllm", "0.6.0", service.SeverityHigh),
		}); err != nil {
			t.Fatal(err)
		}
		clk.Set(t0.Add(time.Minute))
		if err := s.FinishRun(ctx, r.ID, RunStats{AddressesProbed: 256, OpenPorts: 7, Services: 99}); err != nil {
			t.Fatal(err)
		}
		got, err = s.GetRun(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != StatusFinished || !got.FinishedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("after FinishRun: status %q finished %v", got.Status, got.FinishedAt)
		}
		want := RunStats{AddressesProbed: 256, OpenPorts: 7, Services: 3,
			ByRisk: map[service.Severity]int{service.SeverityCritical: 2, service.SeverityHigh: 1}}
		if mustJSON(t, got.Stats) != mustJSON(t, want) {
			t.Errorf("stats = %s, want %s", mustJSON(t, got.Stats), mustJSON(t, want))
		}
		if err := s.EndRun(ctx, r.ID, StatusRunning, "", RunStats{}); !errors.Is(err, ErrBadInput) {
			t.Errorf("EndRun(running) = %v, want ErrBadInput", err)
		}
		if err := s.FinishRun(ctx, "12345", RunStats{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("FinishRun(unknown) = %v, want ErrNotFound", err)
		}
	})

	t.Run("runs and references", func(t *testing.T) {
		s := openT(t, be.newDSN(t), Options{})
		if _, err := s.GetRun(ctx, RefLatest); !errors.Is(err, ErrNotFound) {
			t.Errorf("latest on empty store = %v, want ErrNotFound", err)
		}
		// Runs 1..5: finished, finished, failed, finished, running.
		var ids []string
		for i, end := range []RunStatus{StatusFinished, StatusFinished, StatusFailed, StatusFinished, StatusRunning} {
			// Runs 1 and 3 scanned the same targets: "previous" is 1,
			// not the literal previous finished run.
			target := fmt.Sprintf("t%d", i)
			if i == 1 || i == 3 {
				target = "same"
			}
			r, err := s.CreateRun(ctx, Run{Targets: []string{target}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.ID)
			switch end {
			case StatusFinished:
				err = s.FinishRun(ctx, r.ID, RunStats{})
			case StatusFailed:
				err = s.EndRun(ctx, r.ID, StatusFailed, "network unreachable", RunStats{})
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		runs, err := s.Runs(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		var gotIDs []string
		for _, r := range runs {
			gotIDs = append(gotIDs, r.ID)
		}
		wantIDs := []string{ids[4], ids[3], ids[2], ids[1], ids[0]}
		if fmt.Sprint(gotIDs) != fmt.Sprint(wantIDs) {
			t.Errorf("Runs = %v, want newest first %v", gotIDs, wantIDs)
		}
		if runs, _ := s.Runs(ctx, 2); len(runs) != 2 || runs[0].ID != ids[4] {
			t.Errorf("Runs(2) = %d runs", len(runs))
		}
		if runs[2].Status != StatusFailed || runs[2].Error != "network unreachable" {
			t.Errorf("failed run = %+v", runs[2])
		}
		for _, tc := range []struct {
			ref, want string
			err       error
		}{
			{RefLatest, ids[3], nil},
			{"LATEST", ids[3], nil},
			{RefPrevious, ids[1], nil},
			{ids[4], ids[4], nil},
			{"#" + ids[2], ids[2], nil},
			{" " + ids[0] + " ", ids[0], nil},
			{"4242", "", ErrNotFound},
			{"", "", ErrBadInput},
			{"yesterday", "", ErrBadInput},
			{"-1", "", ErrBadInput},
			{"0", "", ErrBadInput},
		} {
			r, err := s.GetRun(ctx, tc.ref)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Errorf("GetRun(%q) error = %v, want %v", tc.ref, err, tc.err)
				}
				continue
			}
			if err != nil || r.ID != tc.want {
				t.Errorf("GetRun(%q) = %q, %v; want %q", tc.ref, r.ID, err, tc.want)
			}
		}
	})

	t.Run("previous is over the same scope", func(t *testing.T) {
		s := openT(t, be.newDSN(t), Options{})
		var ids []string
		for _, scope := range []string{"x", "y", "x", "z", "y"} {
			r, err := s.CreateRun(ctx, Run{ScopeKey: scope, Targets: []string{"10.0.0.0/24"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.FinishRun(ctx, r.ID, RunStats{}); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.ID)
			prev, err := s.GetRun(ctx, RefPrevious)
			want := ""
			switch len(ids) {
			case 3:
				want = ids[0]
			case 5:
				want = ids[1]
			}
			switch {
			case want == "" && !errors.Is(err, ErrNotFound):
				t.Errorf("after run %s (scope %s): previous = %q, %v; want none", r.ID, scope, prev.ID, err)
			case want != "" && (err != nil || prev.ID != want):
				t.Errorf("after run %s (scope %s): previous = %q, %v; want %s", r.ID, scope, prev.ID, err, want)
			}
		}
		d, err := s.Diff(ctx, RefPrevious, RefLatest)
		if err != nil || d.From.ID != ids[1] || d.To.ID != ids[4] {
			t.Errorf("Diff(previous, latest) compares %q and %q (%v); want %s and %s", d.From.ID, d.To.ID, err, ids[1], ids[4])
		}
	})

	t.Run("services round trip", func(t *testing.T) {
		s := openT(t, be.newDSN(t), Options{})
		r, _ := s.CreateRun(ctx, Run{})
		full := svc("10.0.0.7", 11434, "ollama", "0.5.1", service.SeverityCritical)
		full.Hostname = "gpu7.lab"
		full.TLS = true
		full.CORS = "*"
		full.ManagementOpen = true
		full.Evidence = []string{"GET /api/version → 200"}
		full.Models = []service.Model{{Name: "llama3:8b", Digest: "sha256:abc", Size: 4_661_224_676,
			SystemPrompt: "You are evil", SystemPromptCategories: []string{service.CategoryGuardrailRemoval},
			GuardrailsRemoved: true, GuardrailEvidence: "prompt says so"}}
		full.Loaded = []service.LoadedModel{{Name: "llama3:8b", SizeVRAM: 5 << 30, ExpiresAt: t0.Add(5 * time.Minute)}}
		full.Extra = map[string]any{"gpu": "A100", "n": 3.0}
		full.Findings = []service.Finding{finding("LLM-001", service.SeverityCritical), finding("LLM-007", service.SeverityMedium)}
		full.Remediation = "bind to localhost"
		v6 := svc("2001:db8::1", 8080, "llama.cpp", "b4000", service.SeverityLow)
		in := []service.Service{v6, full, svc("10.0.0.10", 8000, "vllm", "", service.SeverityInfo),
			svc("10.0.0.7", 8000, "http", "", service.SeverityNone)}
		if err := s.SaveServices(ctx, r.ID, in); err != nil {
			t.Fatal(err)
		}
		got, err := s.Services(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := []service.Service{in[3], in[1], in[2], in[0]} // 10.0.0.7:8000, :11434, 10.0.0.10, v6
		if mustJSON(t, got) != mustJSON(t, want) {
			t.Errorf("Services =\n%s\nwant\n%s", mustJSON(t, got), mustJSON(t, want))
		}
		if err := s.SaveServices(ctx, "777", in); !errors.Is(err, ErrNotFound) {
			t.Errorf("SaveServices(unknown run) = %v, want ErrNotFound", err)
		}
		if err := s.SaveServices(ctx, RefLatest, in); !errors.Is(err, ErrBadInput) {
			t.Errorf("SaveServices(latest) = %v, want ErrBadInput", err)
		}
		if err := s.SaveServices(ctx, r.ID, nil); err != nil {
			t.Errorf("SaveServices(empty) = %v", err)
		}
	})

	t.Run("resaving a host:port replaces it", func(t *testing.T) {
		s := openT(t, be.newDSN(t), Options{})
		r, _ := s.CreateRun(ctx, Run{})
		first := withFindings(svc("10.0.0.1", 11434, "ollama", "0.1.0", service.SeverityHigh), finding("A", service.SeverityHigh))
		second := withFindings(svc("10.0.0.1", 11434, "ollama", "0.2.0", service.SeverityLow), finding("B", service.SeverityLow))
		if err := s.SaveServices(ctx, r.ID, []service.Service{first}); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveServices(ctx, r.ID, []service.Service{second}); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishRun(ctx, r.ID, RunStats{}); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Services(ctx, r.ID)
		if len(got) != 1 || got[0].Version != "0.2.0" {
			t.Fatalf("Services = %s, want only the second record", mustJSON(t, got))
		}
		fs, err := s.Findings(ctx, FindingFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != 1 || fs[0].ID != "B" {
			t.Errorf("Findings = %s, want only B", mustJSON(t, fs))
		}
	})

	t.Run("hostile strings", func(t *testing.T) {
		s := openT(t, be.newDSN(t), Options{})
		r, _ := s.CreateRun(ctx, Run{})
		bad := svc("10.0.0.1", 80, "ol\x00lama", "v\xff1", service.SeverityLow)
		bad.Models = []service.Model{{Name: "m", SystemPrompt: "nul\x00inside \xfe"}}
		bad.Findings = []service.Finding{{ID: "X\x00", Severity: service.SeverityLow, Title: "t\xc3", Detail: "it's a 'quote' ?"}}
		if err := s.SaveServices(ctx, r.ID, []service.Service{bad}); err != nil {
			t.Fatalf("SaveServices with NUL and invalid UTF-8: %v", err)
		}
		got, err := s.Services(ctx, r.ID)
		if err != nil || len(got) != 1 {
			t.Fatalf("Services = %v, %v", got, err)
		}
		if got[0].Models[0].SystemPrompt != "nul\x00inside \uFFFD" {
			t.Errorf("system prompt = %q; NUL must survive in the document", got[0].Models[0].SystemPrompt)
		}
		hosts, _ := s.Hosts(ctx, HostFilter{})
		if len(hosts) != 1 || hosts[0].Product != "ollama" || hosts[0].Version != "v\uFFFD1" {
			t.Errorf("Hosts = %s", mustJSON(t, hosts))
		}
		fs, _ := s.Findings(ctx, FindingFilter{Run: r.ID})
		if len(fs) != 1 || fs[0].ID != "X" || fs[0].Detail != "it's a 'quote' ?" {
			t.Errorf("Findings = %s", mustJSON(t, fs))
		}
	})

	t.Run("host history", func(t *testing.T) {
		s := openT(t, be.newDSN(t), Options{})
		day := 24 * time.Hour
		at := func(sv service.Service, d time.Duration) service.Service { sv.ScannedAt = t0.Add(d); return sv }
		a1 := at(svc("10.0.0.1", 11434, "ollama", "0.1.0", service.SeverityHigh), 0)
		a1.Hostname = "gpu1"
		a1.Models = []service.Model{{Name: "x"}}
		b1 := at(svc("10.0.0.2", 11434, "ollama", "0.1.0", service.SeverityCritical), 0)
		b1 = withFindings(b1, finding("LOW-1", service.SeverityLow), finding("CRIT-2", service.SeverityCritical), finding("CRIT-1", service.SeverityCritical))
		a2 := at(svc("10.0.0.1", 11434, "ollama", "0.3.0", service.SeverityMedium), day)
		a2.Models = []service.Model{{Name: "x"}, {Name: "y"}}
		c2 := at(svc("10.0.0.3", 8000, "vllm", "0.6.0", service.SeverityHigh), day)
		c2.Gateway = "llmfence-guard"
		// An older run saved late must not overwrite newer facts but does
		// move first_seen back.
		a0 := at(svc("10.0.0.1", 11434, "ollama", "0.0.1", service.SeverityLow), -day)
		a0.Gateway = "nginx"

		var runIDs []string
		for _, batch := range [][]service.Service{{a1, b1}, {a2, c2}, {a0}} {
			r, err := s.CreateRun(ctx, Run{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.SaveServices(ctx, r.ID, batch); err != nil {
				t.Fatal(err)
			}
			if err := s.FinishRun(ctx, r.ID, RunStats{}); err != nil {
				t.Fatal(err)
			}
			runIDs = append(runIDs, r.ID)
		}
		hosts, err := s.Hosts(ctx, HostFilter{})
		if err != nil {
			t.Fatal(err)
		}
		want := []Host{
			{Host: "10.0.0.1", Port: 11434, Hostname: "gpu1", Product: "ollama", Version: "0.3.0", Auth: service.AuthNone,
				Risk: service.SeverityMedium, Models: 2, FirstSeen: t0.Add(-day), LastSeen: t0.Add(day),
				FirstRun: runIDs[2], LastRun: runIDs[1]},
			{Host: "10.0.0.2", Port: 11434, Product: "ollama", Version: "0.1.0", Auth: service.AuthNone,
				Risk: service.SeverityCritical, FirstSeen: t0, LastSeen: t0, FirstRun: runIDs[0], LastRun: runIDs[0],
				Findings: 3, TopFinding: "CRIT-1"},
			{Host: "10.0.0.3", Port: 8000, Product: "vllm", Version: "0.6.0", Auth: service.AuthNone,
				Risk: service.SeverityHigh, FirstSeen: t0.Add(day), LastSeen: t0.Add(day), FirstRun: runIDs[1], LastRun: runIDs[1],
				Gateway: "llmfence-guard"},
		}
		if mustJSON(t, hosts) != mustJSON(t, want) {
			t.Errorf("Hosts =\n%s\nwant\n%s", mustJSON(t, hosts), mustJSON(t, want))
		}

		for _, tc := range []struct {
			name string
			f    HostFilter
			want []string
			err  error
		}{
			{"product", HostFilter{Product: "VLLM"}, []string{"10.0.0.3:8000"}, nil},
			{"min risk", HostFilter{MinRisk: "high"}, []string{"10.0.0.2:11434", "10.0.0.3:8000"}, nil},
			{"auth", HostFilter{Auth: service.AuthRequired}, nil, nil},
			{"address", HostFilter{Address: "10.0.0.2"}, []string{"10.0.0.2:11434"}, nil},
			{"prefix", HostFilter{Address: "10.0.0.0/31"}, []string{"10.0.0.1:11434"}, nil},
			{"seen since", HostFilter{SeenSince: t0.Add(time.Hour)}, []string{"10.0.0.1:11434", "10.0.0.3:8000"}, nil},
			{"limit", HostFilter{Limit: 1}, []string{"10.0.0.1:11434"}, nil},
			{"gateway", HostFilter{Gateway: "LLMfence-Guard"}, []string{"10.0.0.3:8000"}, nil},
			{"any gateway", HostFilter{Gateway: GatewayAny}, []string{"10.0.0.3:8000"}, nil},
			{"no gateway", HostFilter{Gateway: GatewayNone}, []string{"10.0.0.1:11434", "10.0.0.2:11434"}, nil},
			{"other gateway", HostFilter{Gateway: "nginx"}, nil, nil},
			{"bad risk", HostFilter{MinRisk: "severe"}, nil, ErrBadInput},
			{"bad address", HostFilter{Address: "10.0.0"}, nil, ErrBadInput},
		} {
			got, err := s.Hosts(ctx, tc.f)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Errorf("%s: error %v, want %v", tc.name, err, tc.err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			var keys []string
			for _, h := range got {
				keys = append(keys, h.Key())
			}
			if fmt.Sprint(keys) != fmt.Sprint(tc.want) {
				t.Errorf("%s: hosts %v, want %v", tc.name, keys, tc.want)
			}
		}
	})

	t.Run("findings", func(t *testing.T) {
		s := openT(t, be.newDSN(t), Options{})
		old, _ := s.CreateRun(ctx, Run{})
		if err := s.SaveServices(ctx, old.ID, []service.Service{
			withFindings(svc("10.0.0.1", 1, "ollama", "", service.SeverityHigh), finding("OLD", service.SeverityHigh)),
		}); err != nil {
			t.Fatal(err)
		}
		s.FinishRun(ctx, old.ID, RunStats{})
		r, _ := s.CreateRun(ctx, Run{})
		x := svc("10.0.0.9", 11434, "ollama", "", service.SeverityCritical)
		x.Hostname = "nine"
		if err := s.SaveServices(ctx, r.ID, []service.Service{
			withFindings(svc("10.0.0.10", 11434, "ollama", "", service.SeverityCritical),
				finding("B-CRIT", service.SeverityCritical), finding("A-INFO", service.SeverityInfo)),
			withFindings(x, finding("B-CRIT", service.SeverityCritical), finding("C-MED", service.SeverityMedium)),
			withFindings(svc("10.0.0.11", 8000, "vllm", "", service.SeverityCritical), finding("A-CRIT", service.SeverityCritical)),
		}); err != nil {
			t.Fatal(err)
		}
		fs, err := s.Findings(ctx, FindingFilter{})
		if err != nil || len(fs) != 1 || fs[0].ID != "OLD" || fs[0].RunID != old.ID {
			t.Errorf("Findings(latest) while run %s is still running = %s, %v; want OLD of run %s", r.ID, mustJSON(t, fs), err, old.ID)
		}
		s.FinishRun(ctx, r.ID, RunStats{})
		row := func(host string, port int, hostname, product, id string, sev service.Severity) string {
			return fmt.Sprintf("%s %s:%d %s %s %s %s", r.ID, host, port, hostname, product, id, sev)
		}
		for _, tc := range []struct {
			name string
			f    FindingFilter
			want []string
			err  error
		}{
			{"all of latest, most severe first", FindingFilter{}, []string{
				row("10.0.0.11", 8000, "", "vllm", "A-CRIT", "critical"),
				row("10.0.0.9", 11434, "nine", "ollama", "B-CRIT", "critical"),
				row("10.0.0.10", 11434, "", "ollama", "B-CRIT", "critical"),
				row("10.0.0.9", 11434, "nine", "ollama", "C-MED", "medium"),
				row("10.0.0.10", 11434, "", "ollama", "A-INFO", "info"),
			}, nil},
			{"min severity", FindingFilter{Run: r.ID, MinSeverity: "MEDIUM"}, []string{
				row("10.0.0.11", 8000, "", "vllm", "A-CRIT", "critical"),
				row("10.0.0.9", 11434, "nine", "ollama", "B-CRIT", "critical"),
				row("10.0.0.10", 11434, "", "ollama", "B-CRIT", "critical"),
				row("10.0.0.9", 11434, "nine", "ollama", "C-MED", "medium"),
			}, nil},
			{"by id", FindingFilter{ID: "b-crit"}, []string{
				row("10.0.0.9", 11434, "nine", "ollama", "B-CRIT", "critical"),
				row("10.0.0.10", 11434, "", "ollama", "B-CRIT", "critical"),
			}, nil},
			{"by address", FindingFilter{Address: "10.0.0.10"}, []string{
				row("10.0.0.10", 11434, "", "ollama", "B-CRIT", "critical"),
				row("10.0.0.10", 11434, "", "ollama", "A-INFO", "info"),
			}, nil},
			{"previous", FindingFilter{Run: RefPrevious}, []string{
				fmt.Sprintf("%s 10.0.0.1:1  ollama OLD high", old.ID),
			}, nil},
			{"bad severity", FindingFilter{MinSeverity: "urgent"}, nil, ErrBadInput},
			{"unknown run", FindingFilter{Run: "999"}, nil, ErrNotFound},
		} {
			got, err := s.Findings(ctx, tc.f)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Errorf("%s: error %v, want %v", tc.name, err, tc.err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			var rows []string
			for _, f := range got {
				if f.Title != "title of "+f.ID || f.Detail != "detail of "+f.ID {
					t.Errorf("%s: %s has title %q detail %q", tc.name, f.ID, f.Title, f.Detail)
				}
				rows = append(rows, fmt.Sprintf("%s %s:%d %s %s %s %s", f.RunID, f.Host, f.Port, f.Hostname, f.Product, f.ID, f.Severity))
			}
			if fmt.Sprintf("%q", rows) != fmt.Sprintf("%q", tc.want) {
				t.Errorf("%s:\n got %q\nwant %q", tc.name, rows, tc.want)
			}
		}
	})

	t.Run("diff", func(t *testing.T) {
		s := openT(t, be.newDSN(t), Options{})
		a := []service.Service{
			svc("10.0.0.1", 11434, "ollama", "0.1.0", service.SeverityHigh),
			svc("10.0.0.2", 11434, "ollama", "0.1.0", service.SeverityHigh),
		}
		b := []service.Service{
			svc("10.0.0.1", 11434, "ollama", "0.2.0", service.SeverityHigh),
			svc("10.0.0.3", 8000, "vllm", "0.6.0", service.SeverityLow),
		}
		var ids []string
		for _, batch := range [][]service.Service{a, b} {
			r, _ := s.CreateRun(ctx, Run{})
			if err := s.SaveServices(ctx, r.ID, batch); err != nil {
				t.Fatal(err)
			}
			s.FinishRun(ctx, r.ID, RunStats{})
			ids = append(ids, r.ID)
		}
		d, err := s.Diff(ctx, RefPrevious, RefLatest)
		if err != nil {
			t.Fatal(err)
		}
		if d.From.ID != ids[0] || d.To.ID != ids[1] {
			t.Errorf("Diff runs = %s → %s, want %s → %s", d.From.ID, d.To.ID, ids[0], ids[1])
		}
		want := DiffServices(a, b)
		if mustJSON(t, d.Appeared) != mustJSON(t, want.Appeared) ||
			mustJSON(t, d.Disappeared) != mustJSON(t, want.Disappeared) ||
			mustJSON(t, d.Changed) != mustJSON(t, want.Changed) {
			t.Errorf("store Diff differs from DiffServices:\n%s\nwant\n%s", mustJSON(t, d), mustJSON(t, want))
		}
		if len(d.Appeared) != 1 || len(d.Disappeared) != 1 || len(d.Changed) != 1 {
			t.Errorf("Diff = %d appeared, %d disappeared, %d changed; want 1 each", len(d.Appeared), len(d.Disappeared), len(d.Changed))
		}
		if same, err := s.Diff(ctx, ids[1], ids[1]); err != nil || !same.Empty() {
			t.Errorf("Diff(run, itself) = %v, %v; want empty", same, err)
		}
		if _, err := s.Diff(ctx, ids[0], "31337"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Diff with unknown run = %v, want ErrNotFound", err)
		}
	})

	t.Run("concurrent saves", func(t *testing.T) {
		s := openT(t, be.newDSN(t), Options{})
		r, _ := s.CreateRun(ctx, Run{})
		const workers, batches, per = 8, 5, 20
		var wg sync.WaitGroup
		errs := make(chan error, workers*batches+workers)
		for w := range workers {
			wg.Add(2)
			go func() {
				defer wg.Done()
				for b := range batches {
					svcs := make([]service.Service, per)
					for i := range svcs {
						svcs[i] = withFindings(svc(fmt.Sprintf("10.%d.%d.%d", w, b, i), 11434, "ollama", "1", service.SeverityHigh),
							finding("F", service.SeverityHigh))
					}
					if err := s.SaveServices(ctx, r.ID, svcs); err != nil {
						errs <- err
					}
				}
			}()
			go func() { // readers alongside the writers
				defer wg.Done()
				if _, err := s.Hosts(ctx, HostFilter{}); err != nil {
					errs <- err
				}
				if _, err := s.Runs(ctx, 5); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		s.FinishRun(ctx, r.ID, RunStats{})
		got, _ := s.GetRun(ctx, r.ID)
		if got.Stats.Services != workers*batches*per {
			t.Errorf("services = %d, want %d", got.Stats.Services, workers*batches*per)
		}
		hosts, _ := s.Hosts(ctx, HostFilter{})
		fs, _ := s.Findings(ctx, FindingFilter{})
		if len(hosts) != workers*batches*per || len(fs) != workers*batches*per {
			t.Errorf("hosts = %d, findings = %d, want %d each", len(hosts), len(fs), workers*batches*per)
		}
	})

	t.Run("overlapping concurrent saves", func(t *testing.T) {
		// Batches touching the same hosts in opposite orders must neither
		// deadlock nor lose a host.
		s := openT(t, be.newDSN(t), Options{})
		r1, _ := s.CreateRun(ctx, Run{})
		r2, _ := s.CreateRun(ctx, Run{})
		base := make([]service.Service, 30)
		for i := range base {
			base[i] = svc(fmt.Sprintf("10.3.0.%d", i), 11434, "ollama", "1", service.SeverityLow)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				batch := slices.Clone(base)
				if w%2 == 1 {
					slices.Reverse(batch)
				}
				run := r1.ID
				if w%4 >= 2 {
					run = r2.ID
				}
				if err := s.SaveServices(ctx, run, batch); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		hosts, _ := s.Hosts(ctx, HostFilter{})
		a, _ := s.Services(ctx, r1.ID)
		b, _ := s.Services(ctx, r2.ID)
		if len(hosts) != 30 || len(a) != 30 || len(b) != 30 {
			t.Errorf("hosts %d, run services %d and %d; want 30 each", len(hosts), len(a), len(b))
		}
	})

	t.Run("duplicates in one batch: the last wins", func(t *testing.T) {
		s := openT(t, be.newDSN(t), Options{})
		r, _ := s.CreateRun(ctx, Run{})
		if err := s.SaveServices(ctx, r.ID, []service.Service{
			svc("10.0.0.1", 80, "http", "first", "none"),
			svc("10.0.0.2", 80, "http", "other", "none"),
			svc("10.0.0.1", 80, "http", "last", "none"),
		}); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Services(ctx, r.ID)
		if len(got) != 2 || got[0].Version != "last" {
			t.Errorf("Services = %s", mustJSON(t, got))
		}
	})

	t.Run("2000 services in batches of 100", func(t *testing.T) {
		s := openT(t, be.newDSN(t), Options{})
		r, _ := s.CreateRun(ctx, Run{})
		start := time.Now()
		for b := range 20 {
			svcs := make([]service.Service, 100)
			for i := range svcs {
				sv := svc(fmt.Sprintf("10.1.%d.%d", b, i), 11434, "ollama", "0.5.1", service.SeverityCritical)
				sv.Models = []service.Model{{Name: "llama3:8b", Digest: "sha256:0123", SystemPrompt: "be helpful"}}
				svcs[i] = withFindings(sv, finding("A", service.SeverityCritical), finding("B", service.SeverityLow))
			}
			if err := s.SaveServices(ctx, r.ID, svcs); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("saved 2000 services in %v", time.Since(start)) // informative only
		got, err := s.Services(ctx, r.ID)
		if err != nil || len(got) != 2000 {
			t.Fatalf("Services = %d, %v", len(got), err)
		}
		if got[0].Host != "10.1.0.0" || got[1999].Host != "10.1.19.99" {
			t.Errorf("order: first %s last %s", got[0].Host, got[1999].Host)
		}
	})

	t.Run("reopen is a no-op", func(t *testing.T) {
		dsn := be.newDSN(t)
		s := openT(t, dsn, Options{})
		r, _ := s.CreateRun(ctx, Run{Targets: []string{"x"}})
		before := migrationRows(t, s)
		s.Close()
		s2 := openT(t, dsn, Options{Now: func() time.Time { return t0.Add(1000 * time.Hour) }})
		if after := migrationRows(t, s2); after != before {
			t.Errorf("schema_migrations changed on reopen:\n%s\nbefore\n%s", after, before)
		}
		if got, err := s2.GetRun(ctx, r.ID); err != nil || got.Targets[0] != "x" {
			t.Errorf("data lost on reopen: %v, %v", got, err)
		}
	})

	t.Run("a newer schema is refused", func(t *testing.T) {
		dsn := be.newDSN(t)
		s := openT(t, dsn, Options{})
		s.Close()
		be.raw(t, dsn, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future', CURRENT_TIMESTAMP)")
		_, err := Open(ctx, dsn)
		if !errors.Is(err, ErrSchemaTooNew) {
			t.Fatalf("Open(newer schema) = %v, want ErrSchemaTooNew", err)
		}
		t.Logf("message: %v", err)
	})

	t.Run("cancelled context", func(t *testing.T) {
		s := openT(t, be.newDSN(t), Options{})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.CreateRun(cctx, Run{}); !errors.Is(err, context.Canceled) {
			t.Errorf("CreateRun(cancelled) = %v, want context.Canceled", err)
		}
		if _, err := s.Runs(cctx, 0); err == nil {
			t.Errorf("Runs(cancelled) succeeded")
		}
	})
}

// migrationRows renders schema_migrations for comparison.
func migrationRows(t *testing.T, s Store) string {
	t.Helper()
	ss := s.(*sqlStore)
	rows, err := ss.db.Query("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := ""
	for rows.Next() {
		var (
			v    int
			n    string
			when time.Time
		)
		if err := rows.Scan(&v, &n, &when); err != nil {
			t.Fatal(err)
		}
		out += fmt.Sprintf("%d %s %s\n", v, n, when.UTC().Format(time.RFC3339Nano))
	}
	if out == "" {
		t.Fatal("schema_migrations is empty")
	}
	return out
}
