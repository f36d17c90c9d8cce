package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/cli"
	"github.com/llmfence/llmfence/internal/lab"
)

// probeLabFlags serve one probe persona instead of the fleet (llmfence lab
// --probe-persona NAME).
type probeLabFlags struct {
	persona, listen string
	delay           time.Duration
	slots           int
}

func (f *probeLabFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.persona, "probe-persona", "", "serve one probe persona instead of the fleet: "+strings.Join(lab.ProbePresets(), ", "))
	fl.StringVar(&f.listen, "probe-listen", "127.0.0.1:11434", "loopback address the probe persona listens on")
	fl.Var(cli.NewDuration(&f.delay, 20*time.Millisecond, cli.NonNegative), "token-delay", "probe persona: time per generated token (decode speed)")
	fl.IntVar(&f.slots, "slots", 4, "probe persona: requests decoded at once (as OLLAMA_NUM_PARALLEL); the rest queue")
}

// serve runs the probe persona until ctx ends; the ground truth goes to
// groundTruth when set.
func (f *probeLabFlags) serve(ctx context.Context, e *env, groundTruth string) error {
	p, err := lab.ProbePreset(f.persona)
	if err != nil {
		return usage("--probe-persona: %v", err)
	}
	if f.slots < 1 || f.delay < 0 {
		return usage("--slots must be at least 1 and --token-delay not negative")
	}
	p.TokenDelay, p.Slots = f.delay, f.slots
	addr, err := netip.ParseAddrPort(f.listen)
	if err != nil {
		return usage("--probe-listen %q: %v", f.listen, err)
	}
	if groundTruth != "" {
		b, _ := json.MarshalIndent(struct {
			Persona lab.ProbePersona `json:"persona"`
			Truth   lab.ProbeTruth   `json:"truth"`
		}{p, p.Truth()}, "", "  ")
		if err := writeFileAtomic(groundTruth, func(fh *os.File) error { _, err := fh.Write(append(b, '\n')); return err }); err != nil {
			return fmt.Errorf("--ground-truth: %w", err)
		}
	}
	srv, err := lab.StartProbe(ctx, addr, p)
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(e.stderr, "llmfence: lab: probe persona %q serving model %s on %s (%v per token, %d slots)\n", p.Name, p.Model, srv.URL, p.TokenDelay, p.Slots)
	fmt.Fprintf(e.stderr, "llmfence: lab: probe it with: llmfence probe %s --model %s\n", srv.URL, p.Model)
	fmt.Fprintln(e.stderr, "llmfence: lab: press Ctrl-C to stop")
	<-ctx.Done()
	return nil
}
