package fingerprint

import (
	"testing"

	"github.com/llmfence/llmfence/internal/service"
)

// TestDefaultsHaveOneSource: a zero Options times requests out as the
// scanner's connect and `llmfence scan --timeout` do.
func TestDefaultsHaveOneSource(t *testing.T) {
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Timeout != service.DefaultTimeout || o.TargetBudget != service.DefaultTargetBudget {
		t.Errorf("default timeout %v, target budget %v; want service's %v, %v",
			o.Timeout, o.TargetBudget, service.DefaultTimeout, service.DefaultTargetBudget)
	}
}
