package store

import (
	"context"
	"database/sql"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

func TestInventorySQLite(t *testing.T)   { testInventory(t, sqliteBackend()) }
func TestInventoryPostgres(t *testing.T) { testInventory(t, postgresBackend(postgresDSN(t))) }

// prefixCoverage covers the pairs inside one prefix: the scope of runs in
// these tests.
func prefixCoverage(scopes map[string]string) func(context.Context, Run, []netip.AddrPort) ([]bool, error) {
	return func(_ context.Context, r Run, pairs []netip.AddrPort) ([]bool, error) {
		p := netip.MustParsePrefix(scopes[r.ID])
		out := make([]bool, len(pairs))
		for i, ap := range pairs {
			out[i] = p.Contains(ap.Addr())
		}
		return out, nil
	}
}

func testInventory(t *testing.T, be backend) {
	ctx := context.Background()
	clk := &fakeClock{t: t0}
	st := openT(t, be.newDSN(t), Options{Now: clk.Now})
	s := st.(ServerStore)
	scopes := map[string]string{}
	var alerted []Event
	opts := ApplyOptions{Coverage: prefixCoverage(scopes), InTx: func(_ context.Context, _ *sql.Tx, evs []Event) error {
		alerted = append(alerted, evs...)
		return nil
	}}
	runOf := func(scope string, status RunStatus, svcs ...service.Service) string {
		clk.Set(clk.Now().Add(time.Hour))
		r, err := s.CreateRun(ctx, Run{ScopeKey: scope})
		if err != nil {
			t.Fatal(err)
		}
		scopes[r.ID] = scope
		if len(svcs) > 0 {
			if err := s.SaveServices(ctx, r.ID, svcs); err != nil {
				t.Fatal(err)
			}
		}
		if status == StatusFinished {
			err = s.FinishRun(ctx, r.ID, RunStats{})
		} else {
			err = s.EndRun(ctx, r.ID, status, "stopped", RunStats{})
		}
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	a := withFindings(svc("10.0.0.1", 11434, "ollama", "0.6.8", service.SeverityHigh),
		finding("LLMF-001", service.SeverityHigh), finding("LLMF-004", service.SeverityMedium))
	b := withFindings(svc("10.0.0.2", 8000, "vllm", "0.8.0", service.SeverityCritical), finding("LLMF-002", service.SeverityCritical))
	aLess := withFindings(svc("10.0.0.1", 11434, "ollama", "0.6.8", service.SeverityHigh), finding("LLMF-001", service.SeverityHigh))

	r1 := runOf("10.0.0.0/24", StatusFinished, a, b)
	res, err := s.ApplyRun(ctx, r1, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Applied || res.New != 2 || res.Observed != 2 {
		t.Fatalf("first apply: %+v", res)
	}
	open := func() map[string]string { // finding ID@host -> status
		fs, _, err := s.ListFindings(ctx, FindingQuery{Status: "all"})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, f := range fs {
			st := f.Status
			if f.Stale {
				st += "+stale"
			}
			m[f.FindingID+"@"+f.Host] = st
		}
		return m
	}
	if got := open(); len(got) != 3 || got["LLMF-002@10.0.0.2"] != "open" {
		t.Fatalf("after run 1: %v", got)
	}

	t.Run("re-applying a run changes nothing", func(t *testing.T) {
		before, _, _ := s.Events(ctx, 0, 0, 200)
		res, err := s.ApplyRun(ctx, r1, opts)
		if err != nil || res.Applied {
			t.Fatalf("second apply: %+v %v", res, err)
		}
		after, _, _ := s.Events(ctx, 0, 0, 200)
		if len(after) != len(before) {
			t.Errorf("events %d -> %d", len(before), len(after))
		}
	})

	t.Run("an interrupted run resolves nothing", func(t *testing.T) {
		r2 := runOf("10.0.0.0/24", StatusInterrupted, aLess)
		res, err := s.ApplyRun(ctx, r2, opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.Closed != 0 || res.Complete {
			t.Errorf("interrupted run closed %d", res.Closed)
		}
		got := open()
		if got["LLMF-004@10.0.0.1"] != "open+stale" || got["LLMF-002@10.0.0.2"] != "open+stale" || got["LLMF-001@10.0.0.1"] != "open" {
			t.Errorf("after an interrupted run: %v", got)
		}
		svcs, _, _ := s.ListServices(ctx, ServiceQuery{Sort: "host"})
		if len(svcs) != 2 || svcs[1].State != StateOnline {
			t.Errorf("an interrupted run took a service offline: %+v", svcs)
		}
	})

	t.Run("a completed run of another scope touches nothing", func(t *testing.T) {
		r := runOf("10.0.1.0/24", StatusFinished)
		res, err := s.ApplyRun(ctx, r, opts)
		if err != nil || res.Closed != 0 {
			t.Fatalf("%+v %v", res, err)
		}
	})

	t.Run("a completed run closes what it no longer sees", func(t *testing.T) {
		alerted = nil
		r3 := runOf("10.0.0.0/24", StatusFinished, aLess)
		res, err := s.ApplyRun(ctx, r3, opts)
		if err != nil {
			t.Fatal(err)
		}
		got := open()
		if got["LLMF-004@10.0.0.1"] != "resolved" || got["LLMF-002@10.0.0.2"] != "resolved" || got["LLMF-001@10.0.0.1"] != "open" {
			t.Errorf("after a completed run: %v", got)
		}
		if res.Closed != 1 { // B's one finding (A's was closed as A's own)
			t.Logf("closed via unseen services: %d", res.Closed)
		}
		svcs, _, _ := s.ListServices(ctx, ServiceQuery{Sort: "host"})
		if svcs[1].State != StateOffline || svcs[1].OpenFindings != 0 {
			t.Errorf("unseen service: %+v", svcs[1])
		}
		kinds := map[string]int{}
		for _, e := range alerted {
			kinds[e.Kind]++
		}
		if kinds[EvFindingResolved] != 2 || kinds[EvServiceNotObserved] != 1 {
			t.Errorf("events handed to the transaction hook: %v", kinds)
		}
		c, _ := s.Counts(ctx)
		if c["findings.resolved.critical"] != 1 || c["findings.open.high"] != 1 || c["services.state.offline"] != 1 {
			t.Errorf("counts: %v", c)
		}
	})

	t.Run("acceptance rules hold on every path", func(t *testing.T) {
		fs, _, _ := s.ListFindings(ctx, FindingQuery{FindingID: "LLMF-001"})
		if len(fs) != 1 {
			t.Fatalf("findings: %+v", fs)
		}
		id := fs[0].ID
		pol := DefaultInventoryPolicy()
		now := clk.Now()
		for _, bad := range []struct {
			reason string
			until  time.Time
		}{
			{"short", now.Add(24 * time.Hour)},
			{"an honest, long enough reason", time.Time{}},
			{"an honest, long enough reason", now.Add(-time.Hour)},
			{"an honest, long enough reason", now.Add(400 * 24 * time.Hour)},
		} {
			if err := s.RequestAcceptance(ctx, id, "alice", bad.reason, bad.until, pol, nil); !errors.Is(err, ErrRule) {
				t.Errorf("request %q until %v: %v, want ErrRule", bad.reason, bad.until, err)
			}
		}
		until := now.Add(10 * 24 * time.Hour)
		if err := s.RequestAcceptance(ctx, id, "alice", "lab box, isolated VLAN, replaced in Q1", until, pol, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.ApproveAcceptance(ctx, id, "alice", nil); !errors.Is(err, ErrRule) {
			t.Errorf("self-approval: %v", err)
		}
		if err := s.ApproveAcceptance(ctx, id, "import:alice", nil); !errors.Is(err, ErrRule) {
			t.Errorf("self-approval through an import: %v", err)
		}
		if err := s.ApproveAcceptance(ctx, id, "bob", nil); err != nil {
			t.Fatal(err)
		}
		f, _ := s.GetFinding(ctx, id)
		if f.Status != FindingAccepted || f.AcceptApprovedBy != "bob" {
			t.Errorf("after approval: %+v", f)
		}
		// A scan that sees it again leaves it accepted and silent.
		alerted = nil
		r := runOf("10.0.0.0/24", StatusFinished, aLess)
		if _, err := s.ApplyRun(ctx, r, opts); err != nil {
			t.Fatal(err)
		}
		if f, _ := s.GetFinding(ctx, id); f.Status != FindingAccepted {
			t.Errorf("a scan changed an accepted finding to %s", f.Status)
		}
		// Warned ahead, then reopened at expiry.
		clk.Set(until.Add(-3 * 24 * time.Hour))
		m, err := s.Maintain(ctx, pol, nil)
		if err != nil || m.Warned != 1 || m.Reopened != 0 {
			t.Fatalf("maintain before expiry: %+v %v", m, err)
		}
		clk.Set(until.Add(time.Minute))
		m, err = s.Maintain(ctx, pol, nil)
		if err != nil || m.Reopened != 1 {
			t.Fatalf("maintain after expiry: %+v %v", m, err)
		}
		if f, _ := s.GetFinding(ctx, id); f.Status != FindingOpen {
			t.Errorf("after expiry: %s", f.Status)
		}
		var reopened bool
		for _, e := range m.Events {
			reopened = reopened || (e.Kind == EvFindingReopened && !e.Silent)
		}
		if !reopened {
			t.Errorf("expiry raised no alertable event: %+v", m.Events)
		}
	})

	t.Run("timeline and change feed", func(t *testing.T) {
		a2 := aLess
		a2.Version = "0.7.0"
		a2.Auth = service.AuthNone
		a2.Models = []service.Model{{Name: "llama3:8b"}}
		r := runOf("10.0.0.0/24", StatusFinished, a2)
		if _, err := s.ApplyRun(ctx, r, opts); err != nil {
			t.Fatal(err)
		}
		svcs, _, _ := s.ListServices(ctx, ServiceQuery{Search: "10.0.0.1"})
		if len(svcs) != 1 {
			t.Fatalf("search: %+v", svcs)
		}
		tl, _, err := s.Events(ctx, 0, svcs[0].ID, 100)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]bool{}
		for _, e := range tl {
			kinds[e.Kind] = true
			if e.ServiceID != svcs[0].ID {
				t.Errorf("timeline holds another service's event: %+v", e)
			}
		}
		for _, k := range []string{EvServiceNew, EvServiceVersion, EvModelAdded, EvFindingOpened, EvFindingResolved, EvAccepted} {
			if !kinds[k] {
				t.Errorf("timeline lacks %s: %v", k, kinds)
			}
		}
		// The feed pages by cursor without gaps or repeats.
		var all []Event
		cur := int64(0)
		for {
			evs, next, err := s.Events(ctx, cur, 0, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) == 0 {
				break
			}
			all = append(all, evs...)
			cur = next
		}
		for i := 1; i < len(all); i++ {
			if all[i].Seq <= all[i-1].Seq {
				t.Fatalf("feed out of order at %d", i)
			}
		}
	})
}
