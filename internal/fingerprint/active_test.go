package fingerprint

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/llmfence/llmfence/internal/lab"
)

// TestActiveGenerateEveryStack: with --active, every lab stack that has a
// generate route gets exactly one generation request, through that
// product's own route, and the reply is read back. Without it, none.
func TestActiveGenerateEveryStack(t *testing.T) {
	for _, stack := range lab.Stacks() {
		t.Run(stack, func(t *testing.T) {
			ps, err := lab.Generate(lab.Config{Seed: 5, Live: 1, Stacks: []string{stack}, AuthFraction: -1, TLSFraction: -1})
			if err != nil {
				t.Fatal(err)
			}
			p := ps[0]
			var hits lab.HitLog
			srv := httptest.NewServer(lab.Handler(&p, &hits))
			defer srv.Close()
			addr := netip.MustParseAddrPort(srv.Listener.Addr().String())

			s, err := testProber(t, Options{}).Probe(context.Background(), addr, "", false, nil)
			if err != nil {
				t.Fatal(err)
			}
			if w := hits.Writes(); len(w) != 0 {
				t.Fatalf("passive probe sent writes: %v", w)
			}
			if _, ok := s.Extra["active_generate"]; ok {
				t.Fatal("passive probe recorded an active generation")
			}

			s, err = testProber(t, Options{Active: true}).Probe(context.Background(), addr, "", false, nil)
			if err != nil {
				t.Fatal(err)
			}
			if s.Product != stack {
				t.Fatalf("product %q, want %q", s.Product, stack)
			}
			ag, _ := s.Extra["active_generate"].(map[string]any)
			if ag["generated"] != true {
				t.Fatalf("active_generate = %v", ag)
			}
			w := hits.Writes()
			if len(w) != 1 || w[0].Count != 1 || w[0].Method != "POST" {
				t.Fatalf("write requests %v, want exactly one POST generation", w)
			}
			if want := prodGenerate(t, stack); w[0].Path != want {
				t.Errorf("generated through %s, want the product's route %s", w[0].Path, want)
			}
		})
	}
}

func prodGenerate(t *testing.T, id string) string {
	t.Helper()
	cat, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	p, ok := cat.Product(id)
	if !ok || p.Generate == nil {
		t.Fatalf("product %q has no generate spec", id)
	}
	return p.Generate.Path
}
