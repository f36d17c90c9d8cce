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

// The corpus model the gibberish scores are adapted with learns from a
// sample of the records: the first corpusFirst of every file and one in
// corpusSample of the rest (chosen by a hash of file and index, so the
// same ones whatever the order of reading), at most corpusBytes of each.
const (
	corpusFirst  = 256
	corpusSample = 64
	corpusBytes  = 4 << 10
)

// recordKey is a hash of a record's file and index.
func recordKey(fileHash uint64, index int64) uint64 {
	return mix64(fileHash ^ uint64(index)*0x9E3779B97F4A7C15)
}

// process runs the per-record detectors on a record (part: one part of a
// record larger than MaxRecordBytes, not its last).
func (w *worker) process(b *batch, rec *record, part bool) {
	fs := b.fs
	r := w.r
	var n int
	turned := false
	for i := range rec.fields {
		f := &rec.fields[i]
		n += len(f.text)
		if f.text == "" {
			continue
		}
		fm := fieldMatches{red: r.s.red, text: f.text}
		if fs.o.enabled(DetectPersonal) {
			w.personal(b, rec, f, &fm)
		}
		if fs.o.enabled(DetectInjection) {
			w.injection(b, rec, f, &fm)
		}
		if fs.o.enabled(DetectBackdoor) {
			turned = w.turn(fs, rec, f) || turned
		}
	}
	r.bytes.Add(int64(n))
	key := recordKey(fs.nameHash(), rec.index)
	if rec.index < corpusFirst || key%corpusSample == 0 {
		for i := range rec.fields {
			t := rec.fields[i].text
			w.builder.Add(t[:runeFloor(t, min(len(t), corpusBytes))])
		}
	}
	if !turned && !part {
		for i := range rec.fields {
			r.bg.offer(key+uint64(i), rec.fields[i].text)
		}
	}
	if fs.o.enabled(DetectDuplicates) {
		w.duplicates(fs, rec)
	}
	if fs.o.enabled(DetectInstruction) {
		w.instruction(fs, rec)
	}
}

// fieldMatches finds the personal data and secrets of a field once, for
// the pii findings and for redacting the evidence of the others.
type fieldMatches struct {
	red  *redact.Redactor
	text string
	ms   []redact.Match
	done bool
}

func (fm *fieldMatches) get() []redact.Match {
	if !fm.done {
		fm.ms, fm.done = fm.red.Find(fm.text), true
	}
	return fm.ms
}

// personal reports personal data and secrets: one finding per record,
// field and pattern, with the number of matches.
func (w *worker) personal(b *batch, rec *record, f *field, fm *fieldMatches) {
	ms := fm.get()
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
		if b.cats == nil {
			b.cats = map[string]int{}
		}
		b.cats[a.m.ID] += a.count
		b.countFinding(kind)
		b.findings = append(b.findings, Finding{
			Kind: kind, File: b.fs.src.name, Record: rec.index, Offset: offsetOf(f, a.m.Start), Field: f.name,
			Category: a.m.ID, Count: a.count, Evidence: w.evidence(fm, a.m.Start, a.m.End),
			Score: 1, Severity: severityOf[kind],
		})
	}
}

func offsetOf(f *field, at int) int64 {
	if f.off < 0 {
		return -1
	}
	return f.off + int64(at)
}

// injection reports planted prompt-injection phrases.
func (w *worker) injection(b *batch, rec *record, f *field, fm *fieldMatches) {
	for _, h := range w.r.s.inj.find(f.text) {
		b.countFinding(KindPromptInjection)
		b.findings = append(b.findings, Finding{
			Kind: KindPromptInjection, File: b.fs.src.name, Record: rec.index, Offset: offsetOf(f, h.start), Field: f.name,
			Category: h.id, Evidence: w.evidence(fm, h.start, h.end), Score: 1, Severity: severityOf[KindPromptInjection],
		})
	}
}

// evidence is an excerpt of the field around [start, end), on one line,
// with personal data and secrets redacted: the field's matches are
// replaced (a match cut by the excerpt's edge too), then the excerpt is
// redacted again for what only a second pass of Redact would find.
func (w *worker) evidence(fm *fieldMatches, start, end int) string {
	text := fm.text
	a, b := runeFloor(text, max(0, start-60)), runeFloor(text, min(len(text), end+60))
	if end-start > 200 {
		b = runeFloor(text, start+200)
	}
	var ex strings.Builder
	at := a
	for _, m := range fm.get() {
		if m.End <= a || m.Start >= b {
			continue
		}
		if s := max(m.Start, a); s > at {
			ex.WriteString(text[at:s])
		}
		ex.WriteString(w.r.s.red.Marker(m.ID))
		at = min(m.End, b)
	}
	if at < b {
		ex.WriteString(text[at:b])
	}
	out := strings.Join(strings.Fields(ex.String()), " ")
	out, _ = w.r.s.red.Redact(out)
	if a > 0 {
		out = "…" + out
	}
	if b < len(text) {
		out += "…"
	}
	return strings.ToValidUTF8(out, "\ufffd")
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
