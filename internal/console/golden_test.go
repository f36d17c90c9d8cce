package console

import (
	"bytes"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/users"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update after checking the change):\n%s", name, got)
	}
}

// TestFindingPageGolden: the page of one finding, as the finding page
// handler builds it, in English and in Japanese (the user's setting
// chooses; the browser asks for the other language).
func TestFindingPageGolden(t *testing.T) {
	srv := New(nil, nil, Config{Logger: quiet()})
	eng, err := risk.New()
	if err != nil {
		t.Fatal(err)
	}
	doc := service.Service{Host: "10.20.1.5", Port: 11434, Product: "ollama", Version: "0.6.8", Auth: service.AuthNone,
		Models: []service.Model{{Name: "llama3:8b"}, {Name: "社内アシスタント:latest"}, {Name: "qwen2.5:7b"}}}
	eng.Evaluate(&doc)
	var f0 service.Finding
	for _, f := range doc.Findings {
		if f.ID == "LLMF-001" {
			f0 = f
		}
	}
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	due, until := at("2026-12-31T09:00:00Z"), at("2027-01-15T23:59:00Z")
	f := store.InvFinding{ID: 74, FP: "1f856f8b5878758b620a8d4e", ServiceID: 8, Host: doc.Host, Port: doc.Port, Product: doc.Product,
		FindingID: f0.ID, Severity: string(f0.Severity), Title: f0.Title, Detail: f0.Detail, DetailMsg: f0.DetailMsg,
		Status: store.FindingAcknowledged, FirstSeen: at("2026-12-01T00:30:00Z"), LastSeen: at("2026-12-06T00:30:00Z"),
		OpenedAt: at("2026-12-01T00:30:00Z"), SLADue: &due, AckBy: "olga", AcceptState: "requested", AcceptReason: "検証用の隔離ネットワークです",
		AcceptUntil: &until, AcceptRequestedBy: "olga"}
	for _, tt := range []struct {
		lang   locale.Lang
		accept string
	}{{locale.Japanese, "en-US,en"}, {locale.English, "ja"}} {
		u := store.User{ID: 2, Name: "bob", Role: users.RoleApprover, Lang: string(tt.lang)}
		c := &call{user: u, session: &store.Session{CSRF: "csrf-token"}}
		r := httptest.NewRequest(http.MethodGet, "/findings/74", nil)
		r.Header.Set("Accept-Language", tt.accept)
		w := httptest.NewRecorder()
		srv.render(w, r, c, "finding", srv.findingPage(srv.printer(r, c), f, doc, at("2026-12-07T00:00:00Z")))
		if w.Code != 200 || w.Header().Get("Content-Language") != string(tt.lang) {
			t.Fatalf("%s: %d, Content-Language %q", tt.lang, w.Code, w.Header().Get("Content-Language"))
		}
		golden(t, "finding."+string(tt.lang)+".golden.html", w.Body.Bytes())
	}
}
