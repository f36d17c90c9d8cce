package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// secretKind is a kind of credential both gitleaks and datascan look for:
// how to make one, gitleaks' rule ID, datascan's category.
type secretKind struct {
	name     string
	gitleaks string
	datascan string
	make     func(r *rand.Rand) string
	context  string // how it is written in the document
}

const (
	upper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lower  = "abcdefghijklmnopqrstuvwxyz"
	digits = "0123456789"
	alnum  = upper + lower + digits
	hexl   = "0123456789abcdef"
)

func rs(r *rand.Rand, set string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = set[r.IntN(len(set))]
	}
	return string(b)
}

var secretKinds = []secretKind{
	// AWS key IDs are base32 after the prefix (A-Z, 2-7).
	{"aws", "aws-access-token", "aws_access_key_id", func(r *rand.Rand) string { return "AKIA" + rs(r, upper+"234567", 16) }, "export AWS_ACCESS_KEY_ID=%s"},
	{"github", "github-pat", "github_token", func(r *rand.Rand) string { return "ghp_" + rs(r, alnum, 36) }, "git clone https://github.com/acme/tools with token %s"},
	{"gitlab", "gitlab-pat", "gitlab_token", func(r *rand.Rand) string { return "glpat-" + rs(r, alnum, 20) }, "GITLAB_TOKEN %s was used for the pipeline"},
	{"slack", "slack-bot-token", "slack_token", func(r *rand.Rand) string {
		return "xoxb-" + rs(r, digits, 12) + "-" + rs(r, digits, 13) + "-" + rs(r, alnum, 24)
	}, "the bot posts with %s"},
	{"stripe", "stripe-access-token", "stripe_key", func(r *rand.Rand) string { return "sk_live_" + rs(r, alnum, 24) }, "charge cards with %s"},
	{"gcp", "gcp-api-key", "google_api_key", func(r *rand.Rand) string { return "AIza" + rs(r, alnum+"_-", 35) }, "maps key %s"},
	{"private_key", "private-key", "private_key_pem", func(r *rand.Rand) string {
		raw := make([]byte, 600)
		for i := range raw {
			raw[i] = byte(r.IntN(256))
		}
		b := base64.StdEncoding.EncodeToString(raw)
		var lines []string
		for len(b) > 64 {
			lines = append(lines, b[:64])
			b = b[64:]
		}
		lines = append(lines, b)
		return "-----BEGIN RSA PRIVATE KEY-----\n" + strings.Join(lines, "\n") + "\n-----END RSA PRIVATE KEY-----"
	}, "the deploy key:\n%s\n"},
	{"npm", "npm-access-token", "npm_token", func(r *rand.Rand) string { return "npm_" + rs(r, alnum, 36) }, "//registry.npmjs.org/:_authToken %s"},
	{"sendgrid", "sendgrid-api-token", "sendgrid_key", func(r *rand.Rand) string {
		return "SG." + rs(r, alnum+"_-", 22) + "." + rs(r, alnum+"_-", 43)
	}, "mail goes out through %s"},
	{"age", "age-secret-key", "age_secret_key", func(r *rand.Rand) string {
		return "AGE-SECRET-KEY-1" + rs(r, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)
	}, "backup key %s"},
	{"huggingface", "huggingface-access-token", "huggingface_token", func(r *rand.Rand) string { return "hf_" + rs(r, lower+upper, 34) }, "HF token %s for the gated model"},
	{"pypi", "pypi-upload-token", "pypi_token", func(r *rand.Rand) string { return "pypi-AgEIcHlwaS5vcmc" + rs(r, alnum+"_-", 60) }, "twine upload -p %s dist/*"},
}

type plantedSecret struct {
	Kind   string `json:"kind"`
	File   string `json:"file"`
	Record int64  `json:"record"`
	Secret string `json:"secret"`
}

func genSecrets(dir, truthPath string, docs int) error {
	log.Printf("generating the secrets corpus (%d documents) into %s", docs, dir)
	paras, err := paragraphs()
	if err != nil {
		return err
	}
	os.RemoveAll(dir)
	os.MkdirAll(dir, 0o755)
	r := rand.New(rand.NewPCG(9, 9))
	var truth []plantedSecret
	const shards = 4
	per := (docs + shards - 1) / shards
	for s := range shards {
		name := filepath.Join(dir, fmt.Sprintf("part-%d.jsonl", s))
		f, err := os.Create(name)
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for rec := 0; rec < per && s*per+rec < docs; rec++ {
			text := makeDoc(r, paras)
			if r.IntN(50) == 0 { // one document in 50 holds a secret
				k := secretKinds[r.IntN(len(secretKinds))]
				sec := k.make(r)
				at := floor(text, r.IntN(len(text)+1))
				text = text[:at] + " " + fmt.Sprintf(k.context, sec) + " " + text[at:]
				truth = append(truth, plantedSecret{k.name, name, int64(rec), sec})
			}
			enc.Encode(map[string]string{"text": text})
		}
		w.Flush()
		f.Close()
	}
	b, _ := json.MarshalIndent(truth, "", " ")
	return os.WriteFile(truthPath, b, 0o644)
}

type leak struct {
	RuleID    string `json:"RuleID"`
	File      string `json:"File"`
	StartLine int    `json:"StartLine"`
	Secret    string `json:"Secret"`
	Match     string `json:"Match"`
}

func measureSecrets(bin, gitleaks, dir, truthPath string, procs int) {
	var truth []plantedSecret
	b, err := os.ReadFile(truthPath)
	if err != nil || json.Unmarshal(b, &truth) != nil {
		log.Fatalf("secrets truth: %v", err)
	}
	var size int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if info, err := e.Info(); err == nil {
			size += info.Size()
		}
	}
	ds := run(procs, bin, "datascan", "--format", "json", "--workers", fmt.Sprint(procs), "--fail-on", "none", dir)
	dp := run(procs, bin, "datascan", "--format", "json", "--detect", "personal", "--workers", fmt.Sprint(procs), "--fail-on", "none", dir)
	report := filepath.Join(os.TempDir(), "databench-gitleaks.json")
	os.Remove(report)
	gl := run(procs, gitleaks, "dir", "--no-banner", "--report-format", "json", "--report-path", report, "--exit-code", "0", dir)
	var leaks []leak
	if b, err := os.ReadFile(report); err == nil {
		json.Unmarshal(b, &leaks)
	}
	fmt.Printf("\n== secrets corpus: %d planted secrets of %d kinds in %.1f MB\n", len(truth), len(secretKinds), float64(size)/1e6)
	fmt.Printf("datascan (all detectors): %.1f s (%.1f MB/s), user+sys %.1f s, max RSS %.0f MB\n", ds.wall.Seconds(), float64(size)/1e6/ds.wall.Seconds(), ds.cpu.Seconds(), float64(ds.maxRSS)/1e6)
	fmt.Printf("datascan --detect personal: %.1f s (%.1f MB/s), user+sys %.1f s, max RSS %.0f MB\n", dp.wall.Seconds(), float64(size)/1e6/dp.wall.Seconds(), dp.cpu.Seconds(), float64(dp.maxRSS)/1e6)
	fmt.Printf("gitleaks: %.1f s (%.1f MB/s), user+sys %.1f s, max RSS %.0f MB\n", gl.wall.Seconds(), float64(size)/1e6/gl.wall.Seconds(), gl.cpu.Seconds(), float64(gl.maxRSS)/1e6)
	fmt.Printf("speed ratio (gitleaks time / datascan time): all detectors %.2f, secrets and personal data only %.2f\n", gl.wall.Seconds()/ds.wall.Seconds(), gl.wall.Seconds()/dp.wall.Seconds())
	// datascan: a secret finding of the kind's category at the record.
	dsFound := map[string]bool{}
	for _, f := range parseFindings(ds.out) {
		if f.Kind == "secret" {
			dsFound[fmt.Sprintf("%s:%d:%s", f.File, f.Record, f.Category)] = true
		}
	}
	glFound := map[string][]leak{}
	for _, l := range leaks {
		key := fmt.Sprintf("%s:%d", l.File, l.StartLine-1)
		glFound[key] = append(glFound[key], l)
	}
	type tally struct{ n, ds, gl int }
	per := map[string]*tally{}
	for _, s := range truth {
		t := per[s.Kind]
		if t == nil {
			t = &tally{}
			per[s.Kind] = t
		}
		t.n++
		var k secretKind
		for _, x := range secretKinds {
			if x.name == s.Kind {
				k = x
			}
		}
		if dsFound[fmt.Sprintf("%s:%d:%s", s.File, s.Record, k.datascan)] {
			t.ds++
		}
		first := strings.SplitN(s.Secret, "\n", 2)[0]
		for _, l := range glFound[fmt.Sprintf("%s:%d", s.File, s.Record)] {
			if strings.Contains(s.Secret, l.Secret) || strings.Contains(l.Secret, first) || strings.Contains(l.Match, first) {
				t.gl++
				break
			}
		}
	}
	names := make([]string, 0, len(per))
	for k := range per {
		names = append(names, k)
	}
	sort.Strings(names)
	var tn, tds, tgl int
	fmt.Printf("%-12s %6s %9s %9s\n", "kind", "planted", "datascan", "gitleaks")
	for _, k := range names {
		t := per[k]
		tn, tds, tgl = tn+t.n, tds+t.ds, tgl+t.gl
		fmt.Printf("%-12s %6d %9.3f %9.3f\n", k, t.n, float64(t.ds)/float64(t.n), float64(t.gl)/float64(t.n))
	}
	fmt.Printf("%-12s %6d %9.3f %9.3f\n", "all", tn, float64(tds)/float64(tn), float64(tgl)/float64(tn))
}
