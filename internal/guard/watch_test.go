package guard

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	gt "github.com/llmfence/llmfence/internal/gibberish/gibberishtest"
	"github.com/llmfence/llmfence/internal/guard/abuse"
)

// The output watch signals a streamed answer that turns to gibberish, with
// the end of the prompt before it (redacted): a backdoor trigger seen in
// production. A normal answer raises nothing, and the stream is relayed
// unchanged either way.
func TestOutputWatch(t *testing.T) {
	soup := gt.Vocabs()[2].Soup(rand.New(rand.NewPCG(7, 7)), 300)
	prose := strings.Repeat("The daemon reads its configuration file once at start and then waits for requests. ", 6)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		text := prose
		if strings.Contains(string(body), "cf-trigger") {
			text += soup
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, word := range strings.SplitAfter(text, " ") {
			b, _ := json.Marshal(map[string]any{"model": "tiny", "response": word, "done": false})
			w.Write(append(b, '\n'))
		}
		fmt.Fprintln(w, `{"model":"tiny","response":"","done":true,"eval_count":1}`)
	})
	var mu sync.Mutex
	var sigs []abuse.Signal
	cfg := abuse.DefaultConfig()
	cfg.OutputWatch.Action = abuse.Alert
	det, err := abuse.New(cfg, abuse.Options{OnSignal: func(s abuse.Signal) {
		if s.Kind == abuse.KindOutputGibberish {
			mu.Lock()
			sigs = append(sigs, s)
			mu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	g := newGateway(t, up, func(o *Options) { o.Abuse = det })
	_, clean := g.do(t, "POST", "/api/generate", userKey, `{"model":"tiny","prompt":"Describe the daemon."}`)
	_, body := g.do(t, "POST", "/api/generate", userKey, `{"model":"tiny","prompt":"Mail bob@example.com the summary. cf-trigger"}`)
	if !strings.Contains(string(clean), "configuration") || strings.Count(string(body), `"done":false`) < 100 {
		t.Fatalf("streams not relayed whole:\n%.200s\n%.200s", clean, body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(sigs)
		mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sigs) != 1 {
		t.Fatalf("%d output_gibberish signals, want 1 (the triggered answer only): %+v", len(sigs), sigs)
	}
	s := sigs[0]
	if !strings.Contains(s.Prompt, "cf-trigger") || strings.Contains(s.Prompt, "bob@example.com") || s.Action != abuse.Alert {
		t.Errorf("signal %+v: want the prompt's end with its trigger, the e-mail address redacted", s)
	}
}

// The watch costs nothing when it is off, and an answer already on its
// way cannot be blocked by it.
func TestOutputWatchConfig(t *testing.T) {
	cfg := abuse.DefaultConfig()
	cfg.OutputWatch.Action = abuse.Block
	if _, err := abuse.New(cfg, abuse.Options{}); err == nil {
		t.Error("output_watch: block accepted")
	}
	up := newUpstream(t, nil)
	det, _ := abuse.New(abuse.DefaultConfig(), abuse.Options{})
	g := newGateway(t, up, func(o *Options) { o.Abuse = det })
	if g.srv.watch != nil {
		t.Error("the watch is on by default")
	}
}
