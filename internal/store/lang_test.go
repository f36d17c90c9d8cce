package store

import (
	"context"
	"reflect"
	"testing"

	"github.com/llmfence/llmfence/internal/service"
)

func TestLanguageColumnsSQLite(t *testing.T) { testLanguageColumns(t, sqliteBackend()) }
func TestLanguageColumnsPostgres(t *testing.T) {
	testLanguageColumns(t, postgresBackend(postgresDSN(t)))
}

// testLanguageColumns: a user's language survives sessions and updates,
// and an inventory finding keeps the message its detail was written from
// (set when it opens, refreshed on each sighting, so a finding recorded
// before migration 0013 gains it).
func testLanguageColumns(t *testing.T, be backend) {
	ctx := context.Background()
	st := openT(t, be.newDSN(t), Options{})
	s := st.(ServerStore)

	u, err := s.CreateUser(ctx, User{Name: "hanako", PasswordHash: "x", Role: "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	if u.Lang != "" {
		t.Errorf("a new user's language is %q, want \"\" (the browser decides)", u.Lang)
	}
	u.Lang = "ja"
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, Session{TokenHash: "h", UserID: u.ID, CSRF: "c", CreatedAt: t0, ExpiresAt: t0.AddDate(10, 0, 0), LastSeen: t0}, ""); err != nil {
		t.Fatal(err)
	}
	_, su, err := s.SessionByHash(ctx, "h")
	if err != nil || su.Lang != "ja" {
		t.Errorf("session's user: lang %q, %v", su.Lang, err)
	}
	if back, err := s.UserByName(ctx, "hanako"); err != nil || back.Lang != "ja" {
		t.Errorf("user by name: lang %q, %v", back.Lang, err)
	}

	msg := &service.Message{ID: "risk.detail.unauthenticated_api_models", Args: map[string]string{"count": "4", "product": "ollama"}}
	f := finding("LLMF-001", service.SeverityHigh)
	f.DetailMsg = msg
	plain := finding("LLMF-004", service.SeverityMedium)
	sv := withFindings(svc("10.0.0.9", 11434, "ollama", "0.6.8", service.SeverityHigh), f, plain)
	apply := func(sv service.Service) {
		t.Helper()
		r, err := s.CreateRun(ctx, Run{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SaveServices(ctx, r.ID, []service.Service{sv}); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishRun(ctx, r.ID, RunStats{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ApplyRun(ctx, r.ID, ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	apply(sv)
	got := func() map[string]*service.Message {
		fs, _, err := s.ListFindings(ctx, FindingQuery{Status: "all"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*service.Message{}
		for _, f := range fs {
			out[f.FindingID] = f.DetailMsg
			one, err := s.GetFinding(ctx, f.ID)
			if err != nil || !reflect.DeepEqual(one.DetailMsg, f.DetailMsg) {
				t.Errorf("GetFinding(%d).DetailMsg = %+v, list says %+v (%v)", f.ID, one.DetailMsg, f.DetailMsg, err)
			}
		}
		return out
	}
	m := got()
	if !reflect.DeepEqual(m["LLMF-001"], msg) || m["LLMF-004"] != nil {
		t.Errorf("after the first run: %+v", m)
	}
	// A finding stored without its message (as before 0013) gains it at
	// the next sighting.
	if _, err := s.DB().Exec(`UPDATE inv_findings SET detail_msg = ''`); err != nil {
		t.Fatal(err)
	}
	if m := got(); m["LLMF-001"] != nil {
		t.Fatalf("cleared: %+v", m)
	}
	apply(sv)
	if m := got(); !reflect.DeepEqual(m["LLMF-001"], msg) {
		t.Errorf("after the next sighting: %+v", m["LLMF-001"])
	}
}
