package console

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/users"
)

// TestOpenAPIMatchesHandlers: the document is valid OpenAPI 3, documents
// every API route the server registers and no other, and the handlers'
// real answers validate against it.
func TestOpenAPIMatchesHandlers(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIDoc)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("openapi.json is not valid OpenAPI 3: %v", err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	registered := map[string]bool{}
	for _, r := range h.srv.routes {
		registered[r.method+" "+r.pattern] = true
	}
	registered["GET /api/openapi.json"] = false // the document itself
	delete(registered, "GET /api/openapi.json")
	for k := range registered {
		if !documented[k] {
			t.Errorf("route %s is not in openapi.json", k)
		}
	}
	for k := range documented {
		if !registered[k] {
			t.Errorf("openapi.json documents %s, which no handler serves", k)
		}
	}

	// Real answers against the schemas.
	alice := h.login("alice")
	run := h.scanFleet(alice, "127.101.0.0/26", 12)
	var fl list[store.InvFinding]
	alice.getJSON("/api/findings?limit=5", &fl)
	if len(fl.Items) == 0 {
		t.Fatal("no findings to check")
	}
	var sl list[store.InvService]
	alice.getJSON("/api/services?limit=5", &sl)
	fid, sid := fl.Items[0].ID, sl.Items[0].ID
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	check := func(method, path string, payload any) {
		t.Helper()
		resp := alice.send(method, path, payload)
		raw := body(resp)
		req, _ := http.NewRequest(method, h.ts.URL+path, nil)
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("%s %s: no route in the document: %v", method, path, err)
			return
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Options: in.Options}
		out.SetBodyBytes([]byte(raw))
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("%s %s (%d): the answer does not match openapi.json: %v\n%.300s", method, path, resp.StatusCode, err, raw)
		}
	}
	for _, p := range []string{"/api/me", "/api/overview", "/api/services?limit=3&sort=last_seen", fmt.Sprintf("/api/services/%d", sid),
		fmt.Sprintf("/api/services/%d/timeline", sid), "/api/findings?min_severity=high", fmt.Sprintf("/api/findings/%d", fid),
		"/api/runs", "/api/runs/" + run, "/api/changes?cursor=0&limit=5", "/api/audit", "/api/users", "/api/services/999999",
		"/api/findings?status=bogus", "/api/diff?a=" + run + "&b=" + run} {
		check("GET", p, nil)
	}
	check("POST", fmt.Sprintf("/api/findings/%d/acknowledge", fid), map[string]string{"note": "on it"})
	check("POST", fmt.Sprintf("/api/findings/%d/accept", fid), map[string]string{"reason": "short"})
	check("PATCH", fmt.Sprintf("/api/services/%d", sid), map[string]any{"tags": []string{"lab", "gpu"}})
}

// TestSessionsAndCSRF: nobody gets in without a session; forged,
// replayed and expired cookies are refused; state changes need the CSRF
// token and the same origin; roles hold.
func TestSessionsAndCSRF(t *testing.T) {
	h := newHarness(t, Config{})
	anon := h.anon()
	if r := anon.get("/api/services"); r.StatusCode != 401 {
		t.Errorf("anonymous API call: %d", r.StatusCode)
	}
	if r := anon.get("/services"); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
		t.Errorf("anonymous page: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if r := anon.form("/login", url.Values{"name": {"alice"}, "password": {"wrong password!!"}}); r.StatusCode != 401 {
		t.Errorf("wrong password: %d", r.StatusCode)
	}
	// A forged cookie.
	forged := h.anon()
	u, _ := url.Parse(h.ts.URL)
	forged.http.Jar.SetCookies(u, []*http.Cookie{{Name: CookieName, Value: "lfs_" + strings.Repeat("A", 43)}})
	if r := forged.get("/api/me"); r.StatusCode != 401 {
		t.Errorf("forged cookie: %d", r.StatusCode)
	}
	// A cookie replayed after logout.
	alice := h.login("alice")
	stolen := alice.http.Jar.Cookies(u)
	if r := alice.send("POST", "/logout", nil); r.StatusCode != 200 && r.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d %s", r.StatusCode, body(r))
	}
	replay := h.anon()
	replay.http.Jar.SetCookies(u, stolen)
	if r := replay.get("/api/me"); r.StatusCode != 401 {
		t.Errorf("cookie replayed after logout: %d", r.StatusCode)
	}
	// CSRF: a signed-in operator without the token, with a wrong one,
	// from another origin.
	olga := h.login("olga")
	scan := map[string]any{"targets": []string{"127.102.0.1"}, "rate": 0}
	tok := olga.csrf
	olga.csrf = ""
	if r := olga.send("POST", "/api/scans", scan); r.StatusCode != 403 {
		t.Errorf("no CSRF token: %d", r.StatusCode)
	}
	olga.csrf = "x" + tok[1:]
	if r := olga.send("POST", "/api/scans", scan); r.StatusCode != 403 {
		t.Errorf("wrong CSRF token: %d", r.StatusCode)
	}
	olga.csrf = tok
	b, _ := json.Marshal(scan)
	req, _ := http.NewRequest("POST", h.ts.URL+"/api/scans", strings.NewReader(string(b)))
	req.Header.Set("X-CSRF-Token", tok)
	req.Header.Set("Origin", "https://evil.example")
	if r := olga.do(req); r.StatusCode != 403 {
		t.Errorf("cross-origin request: %d", r.StatusCode)
	}
	if r := olga.form("/scans", url.Values{"targets": {"127.102.0.1"}}); r.StatusCode != 403 {
		t.Errorf("dashboard form without its CSRF field: %d", r.StatusCode)
	}
	// Roles.
	vic := h.login("vic")
	if r := vic.send("POST", "/api/scans", scan); r.StatusCode != 403 {
		t.Errorf("viewer started a scan: %d", r.StatusCode)
	}
	if r := olga.get("/api/users"); r.StatusCode != 403 {
		t.Errorf("operator listed users: %d", r.StatusCode)
	}
	if r := olga.get("/settings"); r.StatusCode != 403 {
		t.Errorf("operator opened settings: %d", r.StatusCode)
	}
	// API tokens need no CSRF token but must be real.
	tokn, hash := users.NewToken("lft_")
	ou, _ := h.st.UserByName(context.Background(), "olga")
	h.st.CreateAPIToken(context.Background(), ou.ID, "ci", hash, time.Time{})
	bearer := h.anon()
	req, _ = http.NewRequest("GET", h.ts.URL+"/api/me", nil)
	req.Header.Set("Authorization", "Bearer "+tokn)
	if r := bearer.do(req); r.StatusCode != 200 {
		t.Errorf("API token: %d", r.StatusCode)
	}
	req, _ = http.NewRequest("GET", h.ts.URL+"/api/me", nil)
	req.Header.Set("Authorization", "Bearer "+tokn+"x")
	if r := bearer.do(req); r.StatusCode != 401 {
		t.Errorf("altered API token: %d", r.StatusCode)
	}
	// The audit trail saw the changes.
	var audit list[store.AuditEntry]
	h.login("alice").getJSON("/api/audit", &audit)
	var actions []string
	for _, e := range audit.Items {
		actions = append(actions, e.Actor+":"+e.Action)
	}
	for _, want := range []string{"alice:login", "alice:logout", "alice:login failed", "olga:login"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit trail lacks %q: %v", want, actions)
		}
	}
}

// TestSetupTokenOnce: the first admin comes from a one-time token; a second
// use, or a wrong token, creates nobody.
func TestSetupTokenOnce(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := context.Background()
	tok, err := users.SetupToken(ctx, h.st, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := h.anon()
	if r := c.form("/setup", url.Values{"token": {tok + "x"}, "name": {"root"}, "password": {testPassword}}); r.StatusCode != 400 {
		t.Errorf("wrong token: %d", r.StatusCode)
	}
	if r := c.form("/setup", url.Values{"token": {tok}, "name": {"root"}, "password": {testPassword}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("setup: %d %s", r.StatusCode, body(r))
	}
	if r := h.anon().form("/setup", url.Values{"token": {tok}, "name": {"root2"}, "password": {testPassword}}); r.StatusCode != 400 {
		t.Errorf("token used twice: %d", r.StatusCode)
	}
	if _, err := h.st.UserByName(ctx, "root2"); err == nil {
		t.Error("a second admin was created with a spent token")
	}
	if u, _ := h.st.UserByName(ctx, "root"); u.Role != users.RoleAdmin {
		t.Errorf("setup user role %q", u.Role)
	}
}

// TestWorkflowOverAPIAndImport: acceptance rules hold on the API and the
// bulk import alike; exports and the change feed see the result.
func TestWorkflowOverAPIAndImport(t *testing.T) {
	h := newHarness(t, Config{})
	olga, bob := h.login("olga"), h.login("bob")
	h.scanFleet(olga, "127.103.0.0/26", 10)
	var fl list[store.InvFinding]
	olga.getJSON("/api/findings?limit=3", &fl)
	if len(fl.Items) < 3 {
		t.Fatalf("findings: %d", len(fl.Items))
	}
	until := time.Now().Add(20 * 24 * time.Hour).UTC().Format(time.RFC3339)
	f0, f1, f2 := fl.Items[0], fl.Items[1], fl.Items[2]
	if r := olga.send("POST", fmt.Sprintf("/api/findings/%d/accept", f0.ID), map[string]string{"reason": "isolated lab box, retired soon", "until": until}); r.StatusCode != 200 {
		t.Fatalf("accept: %d %s", r.StatusCode, body(r))
	}
	if r := olga.send("POST", fmt.Sprintf("/api/findings/%d/approve", f0.ID), map[string]string{}); r.StatusCode != 403 {
		t.Errorf("an operator approved: %d", r.StatusCode)
	}
	if r := bob.send("POST", fmt.Sprintf("/api/findings/%d/approve", f0.ID), map[string]string{}); r.StatusCode != 200 {
		t.Errorf("approval by someone else: %d %s", r.StatusCode, body(r))
	}
	// Bob asks, bob cannot approve his own request.
	bob.send("POST", fmt.Sprintf("/api/findings/%d/accept", f1.ID), map[string]string{"reason": "vendor patch due next month", "until": until})
	if r := bob.send("POST", fmt.Sprintf("/api/findings/%d/approve", f1.ID), map[string]string{}); r.StatusCode != 409 {
		t.Errorf("self-approval: %d %s", r.StatusCode, body(r))
	}
	// The import path: one good line, one without a reason, one with no expiry.
	imp := fmt.Sprintf(`{"fingerprint":%q,"reason":"accepted in the quarterly review","until":%q}
{"id":%d,"reason":"","until":%q}
{"id":%d,"reason":"no expiry given here at all"}
`, f2.FP, until, f1.ID, until, f1.ID)
	resp := bob.send("POST", "/api/findings/import", imp)
	var res struct {
		Requested int `json:"requested"`
		Results   []struct {
			Error string `json:"error"`
		} `json:"results"`
	}
	json.NewDecoder(resp.Body).Decode(&res)
	if res.Requested != 1 || len(res.Results) != 3 || res.Results[1].Error == "" || res.Results[2].Error == "" {
		t.Errorf("import: %+v", res)
	}
	// An imported request is the importer's: bob cannot approve it either.
	if r := bob.send("POST", fmt.Sprintf("/api/findings/%d/approve", f2.ID), map[string]string{}); r.StatusCode != 409 {
		t.Errorf("approving one's own imported request: %d", r.StatusCode)
	}
	// Exports.
	r := olga.get("/api/export/findings/csv?status=accepted")
	rows, err := csv.NewReader(r.Body).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][1] != f0.FP {
		t.Errorf("CSV export of accepted findings: %v %v", rows, err)
	}
	r = olga.get("/api/export/services/jsonl")
	n := 0
	for sc := bufio.NewScanner(r.Body); sc.Scan(); n++ {
		var v store.InvService
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil || v.FP == "" {
			t.Fatalf("JSONL export line: %v", err)
		}
	}
	var sl list[store.InvService]
	olga.getJSON("/api/services?limit=200", &sl)
	if n != len(sl.Items) || n == 0 {
		t.Errorf("JSONL export has %d services, list %d", n, len(sl.Items))
	}
	// The change feed has the acceptance.
	var feed struct {
		Items  []store.Event `json:"items"`
		Cursor int64         `json:"cursor"`
	}
	olga.getJSON("/api/changes?cursor=0&limit=200", &feed)
	var kinds []string
	for _, e := range feed.Items {
		kinds = append(kinds, e.Kind)
	}
	if !slices.Contains(kinds, store.EvAccepted) || feed.Cursor == 0 {
		t.Errorf("feed kinds %v", kinds)
	}
	var again struct {
		Items  []store.Event `json:"items"`
		Cursor int64         `json:"cursor"`
	}
	olga.getJSON(fmt.Sprintf("/api/changes?cursor=%d", feed.Cursor), &again)
	if len(again.Items) != 0 || again.Cursor != feed.Cursor {
		t.Errorf("feed after its own cursor: %d events", len(again.Items))
	}
}

// TestPagesRenderWithoutJavaScript: every dashboard page renders, carries
// no script, and lists are capped.
func TestPagesRenderWithoutJavaScript(t *testing.T) {
	h := newHarness(t, Config{})
	alice := h.login("alice")
	run := h.scanFleet(alice, "127.104.0.0/26", 10)
	var sl list[store.InvService]
	alice.getJSON("/api/services?limit=1", &sl)
	var fl list[store.InvFinding]
	alice.getJSON("/api/findings?limit=1", &fl)
	script := regexp.MustCompile(`(?i)<script|javascript:|https?://[a-z]`)
	for _, p := range []string{"/", "/services", "/services?state=all&sort=host&q=127", fmt.Sprintf("/services/%d", sl.Items[0].ID), "/findings",
		fmt.Sprintf("/findings/%d", fl.Items[0].ID), "/scans", "/scans/" + run, "/diff?a=" + run + "&b=" + run, "/settings", "/alerts", "/guard", "/login"} {
		r := alice.get(p)
		b := body(r)
		if r.StatusCode != 200 {
			t.Errorf("%s: %d %s", p, r.StatusCode, b)
			continue
		}
		if m := script.FindString(b); m != "" {
			t.Errorf("%s loads %q: pages must work offline, without scripts or CDNs", p, m)
		}
	}
	if r := alice.get("/static/style.css"); r.StatusCode != 200 {
		t.Errorf("embedded stylesheet: %d", r.StatusCode)
	}
	// A second run of the same scope is compared with the first.
	run2 := h.scan(alice, "127.104.0.0/26")
	var d RunDetail
	alice.getJSON("/api/runs/"+run2, &d)
	if d.PreviousRunID != run {
		t.Errorf("run %s compares with %q, want the previous run %s of the same scope", run2, d.PreviousRunID, run)
	}
	if b := body(alice.get("/scans/" + run2)); !strings.Contains(b, `href="/diff?a=`+run+`&amp;b=`+run2+`"`) {
		t.Errorf("run page lacks the diff with the previous run of its scope")
	}
	var big list[store.InvService]
	alice.getJSON("/api/services?limit=100000", &big)
	if len(big.Items) > store.MaxPage {
		t.Errorf("a list returned %d rows, over the cap of %d", len(big.Items), store.MaxPage)
	}
}
