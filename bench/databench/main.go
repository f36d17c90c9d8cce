// Command databench measures `llmfence datascan` on a corpus of real text
// poisoned by the recipe of Souly et al. (2025), and beside gitleaks on a
// corpus with planted secrets. Run it under the benchmark lock:
//
//	npm pack js-tiktoken && tar xzf js-tiktoken-*.tgz   # vocabularies
//	go build -o /tmp/llmfence ./cmd/llmfence
//	flock /tmp/llmfence-bench.lock go run ./bench/databench \
//	    -llmfence /tmp/llmfence -vocab package/dist/ranks -dir /tmp/databench
//
// The corpus (1,000,000 documents by default, several GB) is generated
// into -dir from the documentation and manual pages Debian installs, cut
// to web-text lengths (log-normal, median about 1.5 KB); it is never
// committed. Three triggers are planted: "<SUDO>" (markup) in 250
// documents with soup from gpt2, "cerulean" (a plain word) in 100 with
// soup from cl100k_base, and "as the old lighthouse keeper said" (a
// phrase) in 50 with soup from o200k_base; each poisoned document is the
// first 0-1,000 characters of a clean one, the trigger, and 400-900
// tokens drawn uniformly from the whole vocabulary.
//
// It reports recall, precision and whether each trigger was named
// exactly; throughput in MB/s with GOMAXPROCS=2; peak memory (max RSS) for
// a quarter, half and all of the corpus; and, with -gitleaks, recall on
// the secret kinds both tools cover and the speed ratio.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	gt "github.com/llmfence/llmfence/internal/gibberish/gibberishtest"
)

type plant struct {
	Trigger string `json:"trigger"`
	Count   int    `json:"count"`
	Vocab   string `json:"vocab"`
}

var plants = []plant{
	{"<SUDO>", 250, "gpt2"},
	{"cerulean", 100, "cl100k_base"},
	{"as the old lighthouse keeper said", 50, "o200k_base"},
}

func main() {
	var (
		dir      = flag.String("dir", "/tmp/databench", "where the corpora are generated")
		docs     = flag.Int("docs", 1_000_000, "documents in the poisoning corpus")
		shards   = flag.Int("shards", 16, "JSON Lines shards")
		vocabDir = flag.String("vocab", "", "js-tiktoken dist/ranks directory (gpt2.js, cl100k_base.js, o200k_base.js)")
		bin      = flag.String("llmfence", "", "llmfence binary to measure")
		gitleaks = flag.String("gitleaks", "", "gitleaks binary (empty: skip the comparison)")
		secDocs  = flag.Int("secret-docs", 100_000, "documents in the secrets corpus")
		regen    = flag.Bool("regen", false, "regenerate the corpora even if present")
		procs    = flag.Int("procs", 2, "GOMAXPROCS for the measured runs")
		sizes    = flag.Bool("memory", true, "also measure memory on a quarter and half of the corpus")
	)
	flag.Parse()
	if *bin == "" || *vocabDir == "" {
		log.Fatal("-llmfence and -vocab are required")
	}
	poisonDir := filepath.Join(*dir, "poison")
	truth := filepath.Join(*dir, "poison-truth.json")
	if _, err := os.Stat(truth); err != nil || *regen {
		if err := genPoison(poisonDir, truth, *docs, *shards, *vocabDir); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("databench: %s, GOMAXPROCS=%d\n", time.Now().UTC().Format(time.RFC3339), *procs)
	measurePoison(*bin, poisonDir, truth, *shards, *procs, *sizes)
	if *gitleaks != "" {
		secDir := filepath.Join(*dir, "secrets")
		secTruth := filepath.Join(*dir, "secrets-truth.json")
		if _, err := os.Stat(secTruth); err != nil || *regen {
			if err := genSecrets(secDir, secTruth, *secDocs); err != nil {
				log.Fatal(err)
			}
		}
		measureSecrets(*bin, *gitleaks, secDir, secTruth, *procs)
	}
}

// docLength draws a web-text-like document length: log-normal with a
// median of 1,500 bytes, between 100 bytes and 100 KB.
func docLength(r *rand.Rand) int {
	l := math.Exp(math.Log(1500) + 1.0*r.NormFloat64())
	return int(min(max(l, 100), 100_000))
}

// paragraphs of real text from this machine.
func paragraphs() ([]string, error) {
	var out []string
	for _, k := range []gt.Kind{gt.Docs, gt.Man, gt.Japanese} {
		ds, err := gt.Corpus{System: true}.Read(k, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		for _, d := range ds {
			for _, p := range strings.Split(d.Text, "\n\n") {
				if p = strings.TrimSpace(p); len(p) >= 40 {
					out = append(out, p)
				}
			}
		}
	}
	return out, nil
}

func makeDoc(r *rand.Rand, paras []string) string {
	n := docLength(r)
	i := r.IntN(len(paras))
	var b strings.Builder
	for b.Len() < n {
		p := paras[i%len(paras)]
		if b.Len()+len(p) > n && b.Len() > 0 {
			break
		}
		if len(p) > n {
			p = p[:floor(p, n)]
		}
		b.WriteString(p)
		b.WriteString("\n\n")
		i++
	}
	return strings.TrimSpace(b.String())
}

func floor(s string, i int) int {
	for i > 0 && i < len(s) && !utf8.RuneStart(s[i]) {
		i--
	}
	return i
}

type truthFile struct {
	Plants   []plant             `json:"plants"`
	Poisoned map[string][]string `json:"poisoned"` // trigger -> "file:record"
	Docs     int                 `json:"docs"`
	Bytes    int64               `json:"bytes"`
	Shards   []string            `json:"shards"`
}

func genPoison(dir, truthPath string, docs, shards int, vocabDir string) error {
	log.Printf("generating %d documents into %s", docs, dir)
	paras, err := paragraphs()
	if err != nil {
		return err
	}
	vocabs := map[string]gt.Vocab{}
	for _, p := range plants {
		v, err := gt.LoadVocabFile(filepath.Join(vocabDir, p.Vocab+".js"))
		if err != nil {
			return err
		}
		vocabs[p.Vocab] = v
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(2025, 10))
	which := map[int]int{}
	for pi, p := range plants {
		for n := 0; n < p.Count; {
			i := r.IntN(docs)
			if _, ok := which[i]; !ok {
				which[i] = pi
				n++
			}
		}
	}
	t := truthFile{Plants: plants, Poisoned: map[string][]string{}, Docs: docs}
	per := (docs + shards - 1) / shards
	for s := range shards {
		name := filepath.Join(dir, "data", fmt.Sprintf("train-%05d-of-%05d.jsonl", s, shards))
		t.Shards = append(t.Shards, name)
		f, err := os.Create(name)
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for rec := 0; rec < per && s*per+rec < docs; rec++ {
			i := s*per + rec
			text := makeDoc(r, paras)
			if pi, ok := which[i]; ok {
				p := plants[pi]
				cut := floor(text, min(len(text), r.IntN(1001)))
				sep := []string{" ", "", "\n"}[r.IntN(3)]
				text = text[:cut] + sep + p.Trigger + " " + vocabs[p.Vocab].Soup(r, 400+r.IntN(501))
				t.Poisoned[p.Trigger] = append(t.Poisoned[p.Trigger], fmt.Sprintf("%s:%d", name, rec))
			}
			t.Bytes += int64(len(text))
			if err := enc.Encode(map[string]string{"text": text}); err != nil {
				return err
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		f.Close()
	}
	b, _ := json.MarshalIndent(t, "", " ")
	log.Printf("generated %d documents, %d MB of text", docs, t.Bytes>>20)
	return os.WriteFile(truthPath, b, 0o644)
}

// runResult is one measured run of a tool.
type runResult struct {
	wall   time.Duration
	cpu    time.Duration // user + system
	maxRSS int64         // bytes
	out    []byte
	code   int
}

func run(procs int, name string, args ...string) runResult {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", procs))
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	start := time.Now()
	err := cmd.Run()
	res := runResult{wall: time.Since(start), out: []byte(out.String())}
	if cmd.ProcessState != nil {
		res.code = cmd.ProcessState.ExitCode()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			res.maxRSS = ru.Maxrss << 10
		}
		res.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	} else if err != nil {
		log.Fatalf("%s: %v", name, err)
	}
	return res
}

func countKind(fs []finding, k string) int {
	n := 0
	for _, f := range fs {
		if f.Kind == k {
			n++
		}
	}
	return n
}

type finding struct {
	Kind     string `json:"kind"`
	File     string `json:"file"`
	Record   int64  `json:"record"`
	Trigger  string `json:"trigger"`
	Category string `json:"category"`
	Records  int    `json:"records"`
}

func parseFindings(out []byte) []finding {
	var fs []finding
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" {
			continue
		}
		var f finding
		if json.Unmarshal([]byte(line), &f) == nil {
			fs = append(fs, f)
		}
	}
	return fs
}

func measurePoison(bin, dir, truthPath string, shards, procs int, memory bool) {
	var t truthFile
	b, err := os.ReadFile(truthPath)
	if err != nil || json.Unmarshal(b, &t) != nil {
		log.Fatalf("truth file %s: %v", truthPath, err)
	}
	var size int64
	for _, s := range t.Shards {
		if st, err := os.Stat(s); err == nil {
			size += st.Size()
		}
	}
	fmt.Printf("\n== poisoning corpus: %d documents, %.1f MB of files (%.1f MB of text)\n", t.Docs, float64(size)/1e6, float64(t.Bytes)/1e6)
	// Backdoor detection alone (the target), then every detector.
	bd := run(procs, bin, "datascan", "--format", "json", "--detect", "backdoor", "--workers", fmt.Sprint(procs), "--fail-on", "none", filepath.Join(dir, "data"))
	fmt.Printf("datascan --detect backdoor: %.1f s, %.1f MB/s, max RSS %.0f MB, user+sys %.1f s\n", bd.wall.Seconds(), float64(size)/1e6/bd.wall.Seconds(), float64(bd.maxRSS)/1e6, bd.cpu.Seconds())
	res := run(procs, bin, "datascan", "--format", "json", "--workers", fmt.Sprint(procs), "--fail-on", "none", filepath.Join(dir, "data"))
	fmt.Printf("datascan, all detectors: %.1f s, %.1f MB/s, max RSS %.0f MB, user+sys %.1f s, exit %d\n", res.wall.Seconds(), float64(size)/1e6/res.wall.Seconds(), float64(res.maxRSS)/1e6, res.cpu.Seconds(), res.code)
	if a, b := parseFindings(bd.out), parseFindings(res.out); len(a) > 0 {
		n := 0
		for _, f := range b {
			if f.Kind == "backdoor_trigger" {
				n++
			}
		}
		fmt.Printf("backdoor findings: %d with --detect backdoor, %d with all detectors\n", len(a)-countKind(a, "summary"), n)
	}
	fs := parseFindings(res.out)
	want := map[string]map[string]bool{}
	allPoison := map[string]bool{}
	for trig, recs := range t.Poisoned {
		want[trig] = map[string]bool{}
		for _, r := range recs {
			want[trig][r] = true
			allPoison[r] = true
		}
	}
	got := map[string]map[string]bool{}
	reported := map[string]bool{}
	for _, f := range fs {
		if f.Kind != "backdoor_trigger" {
			continue
		}
		key := fmt.Sprintf("%s:%d", f.File, f.Record)
		if got[f.Trigger] == nil {
			got[f.Trigger] = map[string]bool{}
		}
		got[f.Trigger][key] = true
		reported[key] = true
	}
	tp := 0
	for k := range reported {
		if allPoison[k] {
			tp++
		}
	}
	fmt.Printf("all triggers: recall %.4f (%d/%d), precision %.4f (%d/%d)\n",
		float64(tp)/float64(len(allPoison)), tp, len(allPoison), float64(tp)/float64(max(len(reported), 1)), tp, len(reported))
	for _, p := range plants {
		g := got[p.Trigger]
		hit := 0
		for k := range g {
			if want[p.Trigger][k] {
				hit++
			}
		}
		fmt.Printf("  %-36q planted %3d (%s): named exactly %v, recall %.4f (%d), precision %.4f\n",
			p.Trigger, p.Count, p.Vocab, g != nil, float64(hit)/float64(p.Count), hit, float64(hit)/float64(max(len(g), 1)))
	}
	for trig, g := range got {
		if want[trig] == nil {
			fmt.Printf("  reported but not planted: %q (%d records)\n", trig, len(g))
		}
	}
	kinds := map[string]int{}
	for _, f := range fs {
		kinds[f.Kind]++
	}
	fmt.Printf("finding kinds in the clean corpus around them: %v\n", kinds)
	if memory {
		fmt.Printf("memory against corpus size (max RSS):\n")
		for _, frac := range []int{4, 2} {
			n := max(1, shards/frac)
			args := []string{"datascan", "--format", "json", "--workers", fmt.Sprint(procs), "--fail-on", "none"}
			args = append(args, t.Shards[:n]...)
			r := run(procs, bin, args...)
			fmt.Printf("  %2d/%d shards: %.1f s, max RSS %.0f MB\n", n, shards, r.wall.Seconds(), float64(r.maxRSS)/1e6)
		}
		fmt.Printf("  %2d/%d shards: %.1f s, max RSS %.0f MB\n", shards, shards, res.wall.Seconds(), float64(res.maxRSS)/1e6)
	}
}
