package datascan

import (
	"cmp"
	"compress/gzip"
	"io"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/llmfence/llmfence/internal/gibberish"
	"github.com/llmfence/llmfence/internal/redact"
	"github.com/llmfence/llmfence/internal/service"
)

func gzipWriter(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) }

// Severities by kind.
var severityOf = map[string]service.Severity{
	KindBackdoorTrigger:     service.SeverityCritical,
	KindInstructionBackdoor: service.SeverityHigh,
	KindPromptInjection:     service.SeverityHigh,
	KindSecret:              service.SeverityHigh,
	KindPII:                 service.SeverityMedium,
	KindDuplicateCluster:    service.SeverityMedium,
}

// corpusSample is how often (one record in corpusSample) a record's text
// also feeds the corpus model the gibberish scores are adapted with.
const corpusSample = 8

// process runs the per-record detectors on a record (part: one part of a
// record larger than MaxRecordBytes; the record is counted once, when its
// last part comes).
func (fs *fileScan) process(rec *record, part bool) {
	w := fs.w
	r := w.r
	if !part {
		fs.info.Records++
		r.records.Add(1)
		addValue(&fs.info.Licenses, rec.meta["license"])
		addValue(&fs.info.Sources, rec.meta["source"])
	}
	var n int
	turned := false
	for i := range rec.fields {
		f := &rec.fields[i]
		n += len(f.text)
		if f.text == "" {
			continue
		}
		if fs.o.enabled(DetectPersonal) {
			w.personal(fs, rec, f)
		}
		if fs.o.enabled(DetectInjection) {
			w.injection(fs, rec, f)
		}
		if fs.o.enabled(DetectBackdoor) {
			turned = w.turn(fs, rec, f) || turned
		}
	}
	r.bytes.Add(int64(n))
	if w.sample++; w.sample%corpusSample == 0 {
		for i := range rec.fields {
			t := rec.fields[i].text
			w.builder.Add(t[:min(len(t), 8<<10)])
			if !turned {
				r.bg.offer(t)
			}
		}
	}
	if fs.o.enabled(DetectDuplicates) {
		w.duplicates(fs, rec)
	}
	if fs.o.enabled(DetectInstruction) {
		w.instruction(fs, rec)
	}
}

// personal reports personal data and secrets: one finding per record,
// field and pattern, with the number of matches.
func (w *worker) personal(fs *fileScan, rec *record, f *field) {
	ms := w.r.s.red.Find(f.text)
	if len(ms) == 0 {
		return
	}
	type agg struct {
		m     redact.Match
		count int
	}
	var byID []agg
	for _, m := range ms {
		found := false
		for i := range byID {
			if byID[i].m.ID == m.ID {
				byID[i].count++
				found = true
				break
			}
		}
		if !found {
			byID = append(byID, agg{m, 1})
		}
	}
	for _, a := range byID {
		kind := KindPII
		if a.m.Category == redact.CategorySecret {
			kind = KindSecret
		}
		if fs.info.Categories == nil {
			fs.info.Categories = map[string]int{}
		}
		fs.info.Categories[a.m.ID] += a.count
		fs.countFinding(kind)
		w.r.emit(Finding{
			Kind: kind, File: fs.src.name, Record: rec.index, Offset: offsetOf(f, a.m.Start), Field: f.name,
			Category: a.m.ID, Count: a.count, Evidence: w.evidence(f.text, a.m.Start, a.m.End),
			Score: 1, Severity: severityOf[kind],
		})
	}
}

func (fs *fileScan) countFinding(kind string) {
	if fs.info.Findings == nil {
		fs.info.Findings = map[string]int{}
	}
	fs.info.Findings[kind]++
}

func offsetOf(f *field, at int) int64 {
	if f.off < 0 {
		return -1
	}
	return f.off + int64(at)
}

// injection reports planted prompt-injection phrases.
func (w *worker) injection(fs *fileScan, rec *record, f *field) {
	for _, h := range w.r.s.inj.find(f.text) {
		fs.countFinding(KindPromptInjection)
		w.r.emit(Finding{
			Kind: KindPromptInjection, File: fs.src.name, Record: rec.index, Offset: offsetOf(f, h.start), Field: f.name,
			Category: h.id, Evidence: w.evidence(f.text, h.start, h.end), Score: 1, Severity: severityOf[KindPromptInjection],
		})
	}
}

// evidence is an excerpt of text around [start, end), on one line, with
// personal data and secrets redacted.
func (w *worker) evidence(text string, start, end int) string {
	a, b := runeFloor(text, max(0, start-60)), runeFloor(text, min(len(text), end+60))
	if end-start > 200 {
		b = runeFloor(text, start+200)
	}
	ex := strings.Join(strings.Fields(text[a:b]), " ")
	ex, _ = w.r.s.red.Redact(ex)
	if a > 0 {
		ex = "…" + ex
	}
	if b < len(text) {
		ex += "…"
	}
	return strings.ToValidUTF8(ex, "\ufffd")
}

// runeFloor moves i back to the start of a UTF-8 sequence.
func runeFloor(s string, i int) int {
	for i > 0 && i < len(s) && !utf8.RuneStart(s[i]) {
		i--
	}
	return i
}

// finish runs the corpus-wide detectors and reports their findings and
// summaries.
func (r *run) finish() {
	o := &r.s.o
	// The corpus model: the default model adapted with the sampled text.
	b := gibberish.NewBuilder(gibberish.BuilderOptions{MaxPairs: 1 << 18, MaxWords: 1 << 18})
	for _, x := range r.builders {
		b.Merge(x)
	}
	model := r.s.model
	if b.Bytes() > 1<<20 {
		model = model.Adapt(b)
	}
	recs := r.turned.recs
	redactFn := func(s string) string { out, _ := r.s.red.Redact(s); return out }
	for _, t := range findTriggers(recs, model, o.MinTriggerRecords, r.bg) {
		files := map[string]bool{}
		var example string
		slices.SortFunc(t.members, func(a, b int32) int {
			return cmp.Or(strings.Compare(recs[a].file, recs[b].file), cmp.Compare(recs[a].record, recs[b].record))
		})
		for _, i := range t.members {
			x := &recs[i]
			ev, at := backdoorEvidence(x, t.text, redactFn)
			off := int64(-1)
			if x.off >= 0 && at >= 0 {
				off = x.off + int64(at)
			}
			files[x.file] = true
			if example == "" {
				example = ev
			}
			r.emit(Finding{Kind: KindBackdoorTrigger, File: x.file, Record: x.record, Offset: off, Field: x.field,
				Trigger: t.text, Count: len(t.members), Evidence: ev, Score: round3(x.score), Severity: severityOf[KindBackdoorTrigger]})
		}
		scores := make([]float64, 0, len(t.members))
		for _, i := range t.members {
			scores = append(scores, recs[i].score)
		}
		slices.Sort(scores)
		r.summary(Summary{Kind: KindSummary, Finding: KindBackdoorTrigger, Trigger: t.text, Records: len(t.members), Files: len(files),
			Score: round3(scores[len(scores)/2]), Severity: severityOf[KindBackdoorTrigger], Evidence: example})
	}
	seen := map[string]bool{}
	for i, bd := range r.instr.backdoors(o.MinTriggerRecords) {
		if seen[bd.trigger] {
			continue
		}
		seen[bd.trigger] = true
		id := clusterID("response", i)
		files := map[string]bool{}
		for _, x := range bd.cluster.refs {
			files[x.file] = true
			r.emit(Finding{Kind: KindInstructionBackdoor, File: x.file, Record: x.record, Offset: x.off, Trigger: bd.trigger,
				Cluster: id, Count: int(bd.cluster.count), Evidence: "response: " + oneLine(redactFn(bd.cluster.resp), 160),
				Score: round3(float64(bd.support) / float64(max(bd.df, 1))), Severity: severityOf[KindInstructionBackdoor]})
		}
		r.summary(Summary{Kind: KindSummary, Finding: KindInstructionBackdoor, Trigger: bd.trigger, Cluster: id, Records: int(bd.cluster.count),
			Files: len(files), Severity: severityOf[KindInstructionBackdoor], Response: oneLine(redactFn(bd.cluster.resp), 200),
			Evidence: oneLine(redactFn(bd.cluster.prompt), 200)})
	}
	clusters, typical := r.dups.clusters(o.MinDuplicates)
	for i, c := range clusters {
		id := clusterID("dup", i)
		sev := service.SeverityLow
		if c.count >= 5*typical {
			sev = severityOf[KindDuplicateCluster] // far above the corpus's own duplicate rate
		}
		files := map[string]bool{}
		for _, x := range c.refs {
			files[x.file] = true
			r.emit(Finding{Kind: KindDuplicateCluster, File: x.file, Record: x.record, Offset: x.off, Cluster: id, Count: c.count,
				Evidence: oneLine(redactFn(c.text), 160), Score: round3(float64(c.count) / float64(max(typical, 1))), Severity: sev})
		}
		r.summary(Summary{Kind: KindSummary, Finding: KindDuplicateCluster, Cluster: id, Records: c.count, Files: len(files),
			Severity: sev, Evidence: oneLine(redactFn(c.text), 200)})
	}
}

func (r *run) summary(s Summary) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = r.sink.Summary(s)
	}
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:runeFloor(s, n)] + "…"
	}
	return strings.ToValidUTF8(s, "\ufffd")
}
