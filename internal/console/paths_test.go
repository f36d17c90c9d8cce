package console

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/store"
)

// TestWatchedPathsAreInspected: an admin watches a directory; its files are
// inspected by the job engine and a pickle that runs a shell command is
// reported malicious, in the API and on the page.
func TestWatchedPathsAreInspected(t *testing.T) {
	h := newHarness(t, Config{})
	dir := t.TempDir()
	// Protocol 2 pickle calling os.system("id").
	os.WriteFile(filepath.Join(dir, "evil.pkl"), []byte("\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."), 0o600)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("nothing to see"), 0o600)
	alice, vic := h.login("alice"), h.login("vic")
	if r := vic.send("POST", "/api/paths", PathBody{Path: dir}); r.StatusCode != 403 {
		t.Errorf("a viewer watched a path: %d", r.StatusCode)
	}
	if r := alice.send("POST", "/api/paths", PathBody{Path: "relative/dir"}); r.StatusCode != 400 {
		t.Errorf("relative path: %d", r.StatusCode)
	}
	r := alice.send("POST", "/api/paths", PathBody{Path: dir, EveryHours: 24})
	if r.StatusCode != 201 {
		t.Fatalf("watch: %d %s", r.StatusCode, body(r))
	}
	var paths struct{ Items []store.WatchedPath }
	alice.getJSON("/api/paths", &paths)
	id := paths.Items[0].ID
	deadline := time.Now().Add(30 * time.Second)
	var res list[store.PathResult]
	for {
		alice.getJSON(fmt.Sprintf("/api/paths/%d/results", id), &res)
		if len(res.Items) == 2 || time.Now().After(deadline) {
			break
		}
		if len(res.Items) == 0 {
			alice.send("POST", fmt.Sprintf("/api/paths/%d/inspect", id), nil)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(res.Items) != 2 || res.Items[0].Verdict != "malicious" || !strings.HasSuffix(res.Items[0].File, "evil.pkl") {
		t.Fatalf("results: %+v", res.Items)
	}
	if b := body(vic.get(fmt.Sprintf("/results?path=%d", id))); !strings.Contains(b, "evil.pkl") || !strings.Contains(b, "malicious") {
		t.Errorf("results page lacks the malicious file")
	}
}
