package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/service"
)

func TestKeysetPagingSQLite(t *testing.T)   { testKeysetPaging(t, sqliteBackend()) }
func TestKeysetPagingPostgres(t *testing.T) { testKeysetPaging(t, postgresBackend(postgresDSN(t))) }

// testKeysetPaging: paging with After visits every row once, in order,
// for every sort; a forged cursor is refused; deep offsets are refused.
func testKeysetPaging(t *testing.T, be backend) {
	ctx := context.Background()
	clk := &fakeClock{t: t0}
	s := openT(t, be.newDSN(t), Options{Now: clk.Now}).(ServerStore)
	sevs := []service.Severity{service.SeverityLow, service.SeverityHigh, service.SeverityCritical, service.SeverityMedium}
	for round := 0; round < 3; round++ {
		clk.Set(clk.Now().Add(time.Hour))
		r, _ := s.CreateRun(ctx, Run{})
		var svcs []service.Service
		for i := 0; i < 13; i++ {
			sv := withFindings(svc(fmt.Sprintf("10.9.%d.%d", round, i), 11434, "ollama", "1", sevs[i%4]),
				finding("LLMF-001", sevs[i%4]), finding("LLMF-002", sevs[(i+1)%4]))
			sv.ScannedAt = clk.Now().Add(time.Duration(i%5) * time.Minute)
			svcs = append(svcs, sv)
		}
		s.SaveServices(ctx, r.ID, svcs)
		s.FinishRun(ctx, r.ID, RunStats{})
		if _, err := s.ApplyRun(ctx, r.ID, ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, sort := range []string{"risk", "last_seen", "first_seen", "host"} {
		all, _, _ := s.ListServices(ctx, ServiceQuery{Sort: sort, Page: Page{Limit: 200}})
		var paged []int64
		after := ""
		for {
			items, more, err := s.ListServices(ctx, ServiceQuery{Sort: sort, Page: Page{Limit: 4, After: after}})
			if err != nil {
				t.Fatalf("%s: %v", sort, err)
			}
			for _, v := range items {
				paged = append(paged, v.ID)
			}
			if !more {
				break
			}
			after = ServiceCursor(sort, items[len(items)-1])
		}
		if len(all) != 39 || len(paged) != len(all) {
			t.Fatalf("%s: %d rows in one page, %d paged", sort, len(all), len(paged))
		}
		for i := range all {
			if all[i].ID != paged[i] {
				t.Errorf("%s: row %d differs: %d vs %d", sort, i, all[i].ID, paged[i])
				break
			}
		}
	}
	var seen = map[int64]bool{}
	after := ""
	for {
		items, more, err := s.ListFindings(ctx, FindingQuery{Page: Page{Limit: 7, After: after}})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range items {
			if seen[f.ID] {
				t.Fatalf("finding %d twice", f.ID)
			}
			seen[f.ID] = true
		}
		if !more {
			break
		}
		after = FindingCursor(items[len(items)-1])
	}
	if len(seen) != 78 {
		t.Errorf("paged %d findings, want 78", len(seen))
	}
	for _, bad := range []string{"x1.2", "r1", "rA.1", "t1.2"} {
		if _, _, err := s.ListServices(ctx, ServiceQuery{Page: Page{After: bad}}); err == nil {
			t.Errorf("cursor %q accepted", bad)
		}
	}
	if _, _, err := s.ListFindings(ctx, FindingQuery{Page: Page{Offset: MaxOffset + 1}}); err == nil {
		t.Error("an offset past MaxOffset was accepted")
	}
}
