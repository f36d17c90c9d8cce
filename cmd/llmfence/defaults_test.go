package main

import (
	"io"
	"strconv"
	"testing"

	"github.com/llmfence/llmfence/internal/cli"
	"github.com/llmfence/llmfence/internal/scan"
	"github.com/llmfence/llmfence/internal/scanrun"
	"github.com/llmfence/llmfence/internal/service"
)

// TestScanFlagDefaultsHaveOneSource: the defaults `llmfence scan` shows
// and uses are the ones the scanner and the fingerprint fall back to
// (service.DefaultTimeout, service.DefaultTargetBudget,
// scan.DefaultOptions), not a copy of them.
func TestScanFlagDefaultsHaveOneSource(t *testing.T) {
	cmd := newScanCmd(&env{stdout: io.Discard, stderr: io.Discard})
	sd := scan.DefaultOptions()
	for _, c := range []struct{ flag, want string }{
		{"timeout", cli.FormatDuration(service.DefaultTimeout)},
		{"target-budget", cli.FormatDuration(service.DefaultTargetBudget)},
		{"concurrency", strconv.Itoa(sd.Concurrency)},
		{"fingerprints", strconv.Itoa(sd.Fingerprints)},
	} {
		fl := cmd.Flags().Lookup(c.flag)
		if fl == nil {
			t.Fatalf("scan has no --%s", c.flag)
		}
		if fl.DefValue != c.want {
			t.Errorf("--%s defaults to %q; the one source says %q", c.flag, fl.DefValue, c.want)
		}
	}
	if sd.DialTimeout != service.DefaultTimeout {
		t.Errorf("scan.DefaultOptions().DialTimeout = %v, want service.DefaultTimeout %v", sd.DialTimeout, service.DefaultTimeout)
	}
	rd := scanrun.DefaultOptions()
	if rd.Timeout != service.DefaultTimeout || rd.TargetBudget != service.DefaultTargetBudget {
		t.Errorf("scanrun.DefaultOptions: timeout %v, target budget %v", rd.Timeout, rd.TargetBudget)
	}
}
