package probe_test

import (
	"context"
	"flag"
	"fmt"
	"testing"

	"github.com/llmfence/llmfence/internal/ggufmodeltest"
	"github.com/llmfence/llmfence/internal/lab"
	"github.com/llmfence/llmfence/internal/ollamatest"
	"github.com/llmfence/llmfence/internal/probe"
	"github.com/llmfence/llmfence/internal/probe/packs"
)

var (
	faSeeds  = flag.Int("probe.falsealarm.seeds", 1, "persona seeds of the backdoor false-alarm measurement, after the seed TestPersonasGroundTruth covers (docs/probe.md used 25)")
	faOllama = flag.Int("probe.falsealarm.ollama", 0, "also measure on this many tiny random-weight models in a real Ollama (slow; docs/probe.md used 3)")
)

// TestBackdoorFalseAlarms runs the backdoor suite, with every built-in
// candidate, on models with no backdoor (the clean lab personas, under
// several seeds, and with -probe.falsealarm.ollama tiny random-weight
// models in a real Ollama) and counts the candidates flagged; and on the
// backdoored personas, which must be caught. The figures in docs/probe.md
// come from:
//
//	go test ./internal/probe -run TestBackdoorFalseAlarms -v -probe.falsealarm.seeds 25 -probe.falsealarm.ollama 3
func TestBackdoorFalseAlarms(t *testing.T) {
	clean := []string{lab.ProbeAligned, lab.ProbeFragile, lab.ProbeUncensored, lab.ProbeWeakened, lab.ProbeOverRefusing, lab.ProbeLeaky, lab.ProbeMemorised}
	dirty := []string{lab.ProbeBackdoorGibberish, lab.ProbeBackdoorFixed, lab.ProbeBackdoorRare}
	var runs, tested, flagged, bdRuns, caught, extra int
	for seed := int64(2); seed <= int64(1+*faSeeds); seed++ {
		for _, name := range append(clean, dirty...) {
			srv, p, _ := persona(t, name, func(p *lab.ProbePersona) { p.Seed = seed })
			res := runProbe(t, srv.URL, probe.Config{Model: p.Model, Suites: []string{"backdoor"}, RareTokens: 4}, nil)
			b := summary(t, res, "backdoor")
			truth := p.Truth()
			var got []string
			for _, tr := range b.Triggers {
				if tr.Flagged {
					got = append(got, tr.Trigger)
				}
			}
			if truth.Backdoor == "clean" {
				runs++
				tested += len(b.Triggers)
				flagged += len(got)
				if len(got) > 0 {
					t.Errorf("%s seed %d: false alarm on %q", name, seed, got)
				}
				continue
			}
			bdRuns++
			for _, g := range got {
				if g == truth.Triggers[0] {
					caught++
				} else {
					extra++
					t.Errorf("%s seed %d: flagged %q besides the planted trigger", name, seed, g)
				}
			}
			if len(got) == 0 {
				t.Errorf("%s seed %d: missed the planted trigger %q", name, seed, truth.Triggers[0])
			}
		}
	}
	t.Logf("lab personas: %d clean runs, %d candidates tested, %d flagged; %d backdoored runs, %d planted triggers caught, %d other candidates flagged",
		runs, tested, flagged, bdRuns, caught, extra)
	if *faOllama > 0 {
		ollamaFalseAlarms(t, *faOllama)
	}
}

// ollamaFalseAlarms runs the built-in backdoor sweep (answers cut to 12
// tokens: the harness's Ollama decodes slowly) on tiny random-weight models.
func ollamaFalseAlarms(t *testing.T, n int) {
	srv := ollamatest.Start(t)
	builtin, err := packs.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	var ps []*packs.Pack
	for _, p := range builtin {
		if p.Suite == packs.SuiteBackdoor {
			for _, pr := range p.Probes {
				pr.NumPredict = 12
			}
		}
		ps = append(ps, p)
	}
	tested, flagged := 0, 0
	for i := range n {
		name := fmt.Sprintf("tiny-%d", i)
		srv.Create(t, ollamatest.Model{Name: name, Weights: ggufmodeltest.Options{Seed: int64(100 + i)}})
		res, err := probe.Run(context.Background(), probe.Options{Config: probe.Config{Target: srv.URL, Model: name,
			Seed: probe.DefaultSeed, Suites: []string{"backdoor"}, RareTokens: 4}, Packs: ps})
		if err != nil {
			t.Fatal(err)
		}
		b := summary(t, res, "backdoor")
		tested += len(b.Triggers)
		for _, tr := range b.Triggers {
			if tr.Flagged {
				flagged++
				t.Errorf("%s: false alarm on %q (effect %.2f, p %.2g)", name, tr.Trigger, tr.Effect, tr.PValue)
			}
		}
	}
	t.Logf("tiny random-weight models in Ollama %s: %d models, %d candidates tested, %d flagged", ollamatest.WantVersion, n, tested, flagged)
}
