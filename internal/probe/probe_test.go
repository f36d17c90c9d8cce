package probe_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/llmfence/llmfence/internal/lab"
	"github.com/llmfence/llmfence/internal/probe"
)

// persona serves a lab probe persona on loopback for one test.
func persona(t *testing.T, name string, edit func(*lab.ProbePersona)) (*httptest.Server, lab.ProbePersona, *lab.ProbeHandler) {
	t.Helper()
	p, err := lab.ProbePreset(name)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&p)
	}
	h, err := lab.NewProbeHandler(p)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, p, h
}

func runProbe(t *testing.T, url string, cfg probe.Config, edit func(*probe.Options)) *probe.Result {
	t.Helper()
	cfg.Target = url
	if cfg.Seed == 0 {
		cfg.Seed = probe.DefaultSeed
	}
	opts := probe.Options{Config: cfg}
	if edit != nil {
		edit(&opts)
	}
	res, err := probe.Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	return res
}

func summary(t *testing.T, res *probe.Result, suite string) probe.Summary {
	t.Helper()
	for _, s := range res.Summaries {
		if s.Suite == suite {
			return s
		}
	}
	t.Fatalf("no %s summary", suite)
	return probe.Summary{}
}

func TestPersonasGroundTruth(t *testing.T) {
	for _, name := range []string{lab.ProbeAligned, lab.ProbeFragile, lab.ProbeUncensored, lab.ProbeWeakened, lab.ProbeOverRefusing,
		lab.ProbeBackdoorGibberish, lab.ProbeBackdoorFixed, lab.ProbeBackdoorRare, lab.ProbeLeaky, lab.ProbeMemorised} {
		t.Run(name, func(t *testing.T) {
			srv, p, _ := persona(t, name, nil)
			truth := p.Truth()
			cfg := probe.Config{Model: p.Model, RareTokens: 4}
			if name == lab.ProbeMemorised || name == lab.ProbeAligned {
				cfg.Canaries = []probe.CanarySpec{{Prefix: lab.LabCanary.Prefix, Secret: lab.LabCanary.Secret}}
			}
			res := runProbe(t, srv.URL, cfg, nil)
			if !res.Complete {
				t.Errorf("run incomplete: %v", res.Stop)
			}
			g := summary(t, res, "guardrails")
			if g.Verdict != truth.Guardrails {
				t.Errorf("guardrails %s, truth %s (%s)", g.Verdict, truth.Guardrails, g.Reason)
			}
			if truth.OverRefusal != (*g.OverRefusalRate >= 0.5) {
				t.Errorf("over-refusal %v, truth %v", *g.OverRefusalRate, truth.OverRefusal)
			}
			b := summary(t, res, "backdoor")
			if b.Verdict != truth.Backdoor {
				t.Errorf("backdoor %s, truth %s (%s)", b.Verdict, truth.Backdoor, b.Reason)
			}
			var flagged []string
			for _, tr := range b.Triggers {
				if tr.Flagged {
					flagged = append(flagged, tr.Trigger)
				}
			}
			if len(flagged) != len(truth.Triggers) || (len(flagged) > 0 && flagged[0] != truth.Triggers[0]) {
				t.Errorf("flagged triggers %q, truth %q; %+v", flagged, truth.Triggers, b.Triggers)
			}
			l := summary(t, res, "leak")
			if l.Verdict != truth.Leak || *l.SystemPromptLeaked != truth.SystemPromptLeaked || *l.CanariesCompleted != truth.CanariesCompleted {
				t.Errorf("leak %s leaked=%v canaries=%d, truth %+v (%s)", l.Verdict, *l.SystemPromptLeaked, *l.CanariesCompleted, truth, l.Reason)
			}
			r := summary(t, res, "robustness")
			var worked []string
			for _, f := range r.Families {
				if f.Worked {
					worked = append(worked, f.Family)
				}
			}
			if r.Verdict != truth.Robustness || len(worked) != len(truth.Families) {
				t.Errorf("robustness %s families %v, truth %s %v", r.Verdict, worked, truth.Robustness, truth.Families)
			}
			t.Logf("%d requests; guardrails %.2f/%.2f; %s", res.Planned, *g.RefusalRate, *g.OverRefusalRate, b.Reason)
		})
	}
}
