package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/store"
)

// crashUpstream is an Ollama-shaped server: /api/generate streams
// `lines` tokens and a done:true line with eval_count (or answers one JSON
// object when "stream":false), /api/tags lists one model.
func crashUpstream(t *testing.T, lines int) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/version", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"version":"0.6.8"}`)
	})
	mux.HandleFunc("GET /api/tags", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"models":[{"name":"tiny:latest","model":"tiny:latest"}]}`)
	})
	mux.HandleFunc("POST /api/generate", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), `"stream":false`) {
			fmt.Fprintf(w, `{"model":"tiny","response":"%s","done":true,"prompt_eval_count":3,"eval_count":%d}`,
				strings.Repeat("x", lines), lines)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		for i := range lines {
			fmt.Fprintf(w, `{"model":"tiny","response":"t%d","done":false}`+"\n", i)
			w.(http.Flusher).Flush()
		}
		fmt.Fprintf(w, `{"model":"tiny","response":"","done":true,"prompt_eval_count":3,"eval_count":%d}`+"\n", lines)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// A client that saw its response end has its audit record, even when the
// guard is killed (SIGKILL, no shutdown) right after: the record was in the
// local audit spool before the response ended, and the next guard to start
// on the store copies it in (exactly once) before it serves.
func TestGuardAuditSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts guard processes")
	}
	up := crashUpstream(t, 5)
	db := filepath.Join(t.TempDir(), "guard.db")
	key := giCreateKey(t, db, "crash", "--models", "*")

	g := startGuardProcess(t, db, up.URL)
	base := g.base

	type call struct {
		method, path, key, body string
		status                  int
		tokens                  int64 // completion tokens billed
	}
	var calls []call
	for range 24 {
		calls = append(calls, call{"POST", "/api/generate", key, `{"model":"tiny","prompt":"hi"}`, 200, 5})
	}
	for range 8 {
		calls = append(calls, call{"POST", "/api/generate", key, `{"model":"tiny","prompt":"hi","stream":false}`, 200, 5})
	}
	for range 4 {
		calls = append(calls, call{"GET", "/api/tags", key, "", 200, 0})
	}
	for range 4 {
		calls = append(calls, call{"POST", "/api/generate", "", `{"model":"tiny","prompt":"hi"}`, 401, 0})
	}

	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, len(calls))
	next := make(chan call)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				req, _ := http.NewRequestWithContext(ctx, c.method, base+c.path, strings.NewReader(c.body))
				if c.key != "" {
					req.Header.Set("Authorization", "Bearer "+c.key)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					continue
				}
				_, err = io.ReadAll(resp.Body) // to the end of the response
				resp.Body.Close()
				if err != nil || resp.StatusCode != c.status {
					errs <- fmt.Errorf("%s %s: status %d (want %d), read error %v", c.method, c.path, resp.StatusCode, c.status, err)
				}
			}
		}()
	}
	for _, c := range calls {
		next <- c
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Every response has ended: kill at once, no graceful shutdown.
	g.kill()

	// The next guard on this store copies the spool in before it is ready.
	g2 := startGuardProcess(t, db, up.URL)
	recs := storeRecords(t, db)
	byStatus := map[int]int64{}
	var completion int64
	for _, r := range recs {
		byStatus[r.Status] += r.Count()
		completion += r.CompletionTokens
	}
	// Every answered request was forwarded and recorded on its own; of the
	// refused ones (aggregated), the first is written at once and the
	// count of the rest when their window ends, which the kill cut short.
	if byStatus[200] != 36 || byStatus[401] < 1 || byStatus[401] > 4 {
		t.Errorf("records by status %v, want 36×200 and 1–4×401", byStatus)
	}
	if completion != 32*5 {
		t.Errorf("completion tokens recorded %d, want %d", completion, 32*5)
	}
	// Capture is off by default: no prompt or response was stored.
	st, err := store.OpenGuard(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if caps, err := st.QueryCaptures(ctx, store.CaptureFilter{}); err != nil || len(caps) != 0 {
		t.Errorf("captures without --capture: %d, %v", len(caps), err)
	}
	st.Close()

	// Under load: clients hammer the guard and it is killed mid-flight.
	// Every response a client read to its end has its record; requests cut
	// off by the kill may or may not (no more than were sent).
	var completed, sent atomic.Int64
	stop := make(chan struct{})
	var lw sync.WaitGroup
	for range 16 {
		lw.Add(1)
		go func() {
			defer lw.Done()
			client := &http.Client{}
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				req, _ := http.NewRequestWithContext(ctx, "POST", g2.base+"/api/generate", strings.NewReader(`{"model":"tiny","prompt":"hi"}`))
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode == 200 && strings.Contains(string(b), `"done":true`) {
					completed.Add(1)
				}
			}
		}()
	}
	for completed.Load() < 300 {
		time.Sleep(10 * time.Millisecond)
	}
	g2.kill()
	close(stop)
	lw.Wait()

	startGuardProcess(t, db, up.URL)
	var after int64
	for _, r := range storeRecords(t, db) {
		if r.Status == 200 {
			after += r.Count()
		}
	}
	got := after - 36
	if got < completed.Load() || got > sent.Load() {
		t.Errorf("after a kill under load: %d records of answered requests; %d responses were read to the end, %d requests sent",
			got, completed.Load(), sent.Load())
	}
	t.Logf("kill under load: %d answered, %d sent, %d recorded", completed.Load(), sent.Load(), got)
}

// storeRecords reads every usage record of db.
func storeRecords(t *testing.T, db string) []store.UsageRecord {
	t.Helper()
	st, err := store.OpenGuard(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.QueryUsage(context.Background(), store.UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// With --capture, the prompt and the streamed answer are stored, redacted,
// and `llmfence captures` shows them; without it nothing is stored.
func TestGuardCapture(t *testing.T) {
	up := crashUpstream(t, 3)
	db := filepath.Join(t.TempDir(), "guard.db")
	key := giCreateKey(t, db, "cap", "--models", "*")
	base := giStartGuard(t, db, up.URL, "--capture")
	secret := key // a real llmfence key pasted into a prompt
	body := fmt.Sprintf(`{"model":"tiny","prompt":"mail bob@example.com, key %s, card 4111 1111 1111 1111"}`, secret)
	resp := giPost(t, context.Background(), base+"/api/generate", key, body)
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var caps []store.Capture
	for range 100 {
		out, errOut, code := runCLI(t, "", "--db", db, "captures", "--format", "json", "--since", "0")
		if code != 0 {
			t.Fatalf("captures: exit %d: %s", code, errOut)
		}
		caps = decodeJSONL[store.Capture](t, out)
		if len(caps) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(caps) != 1 {
		t.Fatalf("captures: %+v, want one", caps)
	}
	c := caps[0]
	for _, leaked := range []string{"bob@example.com", secret, "4111 1111 1111 1111"} {
		if strings.Contains(c.Prompt, leaked) {
			t.Errorf("stored prompt %q still holds %q", c.Prompt, leaked)
		}
	}
	if !strings.Contains(c.Prompt, "mail ") || c.Redactions["email"] != 1 {
		t.Errorf("stored prompt %q, redactions %v", c.Prompt, c.Redactions)
	}
	if c.Response != "t0t1t2" || c.KeyName != "cap" || c.Route != "/api/generate" || c.Model != "tiny" || c.Status != 200 {
		t.Errorf("capture %+v", c)
	}
}
