package audit

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/llmfence/llmfence/internal/fingerprint"
	"github.com/llmfence/llmfence/internal/inspect"
	"github.com/llmfence/llmfence/internal/service"
)

// FingerprintProber probes with the scan's fingerprint code: the same
// read-only requests `llmfence scan` sends (never pull, push, create, copy,
// delete or generate), here only ever to the machine's own loopback.
func FingerprintProber(p *fingerprint.Prober) Prober { return fpProber{p} }

type fpProber struct{ p *fingerprint.Prober }

func (f fpProber) Probe(ctx context.Context, addr netip.AddrPort) (*service.Service, error) {
	if !addr.Addr().Unmap().IsLoopback() {
		return nil, fmt.Errorf("audit probes loopback only, not %s", addr)
	}
	return f.p.Probe(ctx, addr, "", false, nil)
}

// InspectorFor runs `llmfence inspect` on stores: an Ollama store is
// verified blob by blob against its manifests, its models rated by judge;
// any other store is walked file by file.
func InspectorFor(in *inspect.Inspector, judge inspect.ModelJudge) StoreInspector {
	return inspector{in: in, judge: judge}
}

type inspector struct {
	in    *inspect.Inspector
	judge inspect.ModelJudge
}

func (i inspector) InspectStore(ctx context.Context, layout, dir string) (InspectSummary, []service.Finding, error) {
	var fs []service.Finding
	emit := func(r *inspect.Result) error {
		for _, f := range r.Findings {
			if f.Severity.Rank() < service.SeverityLow.Rank() {
				continue
			}
			d := r.Path
			if f.Member != "" {
				d += " [" + f.Member + "]"
			}
			if f.Detail != "" {
				d += ": " + f.Detail
			}
			fs = append(fs, service.Finding{ID: f.ID, Severity: f.Severity, Title: f.Title, Detail: d})
		}
		return nil
	}
	var sum inspect.Summary
	var err error
	if layout == layoutOllama {
		sum, err = i.in.InspectOllamaStore(ctx, dir, i.judge, emit)
	} else {
		sum, err = i.in.Inspect(ctx, []string{dir}, emit)
	}
	out := InspectSummary{Files: sum.Files, Errors: sum.Errors, Verdicts: map[string]int{}}
	for v, n := range sum.Verdicts {
		out.Verdicts[string(v)] = n
	}
	return out, fs, err
}
