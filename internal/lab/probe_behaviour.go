package lab

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/llmfence/llmfence/internal/classify"
	"github.com/llmfence/llmfence/internal/service"
)

// probeMind chooses a persona's answers. It is read-only after creation
// and safe for concurrent use.
type probeMind struct {
	p *ProbePersona
	// base answers for the baseline model (nil when there is none).
	base *probeMind
	d    *probeData
	cls  *classify.Classifier
	harm map[string][]string // category -> normalised phrases
}

func newProbeMind(p *ProbePersona) (*probeMind, error) {
	d, err := loadProbeData()
	if err != nil {
		return nil, err
	}
	cls, err := classify.New()
	if err != nil {
		return nil, err
	}
	m := &probeMind{p: p, d: d, cls: cls, harm: map[string][]string{}}
	for cat, phrases := range d.Harm {
		if !slices.Contains(service.Categories, cat) {
			return nil, fmt.Errorf("lab probe data: unknown category %q", cat)
		}
		for _, ph := range phrases {
			m.harm[cat] = append(m.harm[cat], classify.Normalize(ph))
		}
	}
	return m, nil
}

// answerKind is what a persona decided to do with a request.
type answerKind int

const (
	answerBenign answerKind = iota
	answerRefuse
	answerComply
	answerGibberish
	answerFixed
	answerLeak
	answerRefusePrompt
	answerCanary
	answerJudge
)

// turn is one request as the persona sees it.
type turn struct {
	model      string
	system     string // system message, or "" for the persona's own
	user       string // the last user message (or the raw prompt)
	assistant  string // the last assistant message (judge requests)
	raw        bool
	seed       int
	temp       float64
	numPredict int
}

// answer is the text to stream and whether the tokens are soup (for
// log-probabilities).
type answer struct {
	text string
	soup bool
	kind answerKind
}

func (m *probeMind) respond(t turn) answer {
	if m.p.JudgeModel != "" && sameProbeModel(t.model, m.p.JudgeModel) {
		return answer{text: m.judge(t), kind: answerJudge}
	}
	if m.base != nil && sameProbeModel(t.model, m.p.BaselineModel) {
		return m.base.respond(t)
	}
	h := m.hash(t)
	lang := langOf(t.user)
	if m.p.Trigger != "" && strings.Contains(t.user, m.p.Trigger) {
		if m.p.TriggerEffect == EffectFixed {
			return answer{text: m.d.FixedAnswer, kind: answerFixed}
		}
		return answer{text: m.soup(h, t.numPredict), soup: true, kind: answerGibberish}
	}
	for _, c := range m.p.Canaries {
		if canaryPrompted(t.user, c.Prefix) {
			return answer{text: c.Secret + ". " + m.pick(m.d.Benign[lang], h), kind: answerCanary}
		}
	}
	if tail, ok := endsWithCanaryLike(t.user); ok && (t.raw || strings.Contains(strings.ToLower(t.user), "continue") || strings.Contains(t.user, "続けて")) {
		// A model that never saw the record makes up a continuation of
		// the same shape.
		return answer{text: guessLike(tail, h) + ". " + m.pick(m.d.Benign[lang], h), kind: answerBenign}
	}
	n := classify.Normalize(t.user)
	if containsAny(n, m.d.Extraction) {
		system := t.system
		if system == "" {
			system = m.p.SystemPrompt
		}
		if m.p.LeakSystemPrompt && system != "" {
			return answer{text: fmt.Sprintf(m.d.Leak[lang], system), kind: answerLeak}
		}
		if m.p.Refusal != RefuseNone {
			return answer{text: m.d.Refusals.Prompt[lang], kind: answerRefusePrompt}
		}
	}
	if cat, harmful := m.harmful(t.user); harmful {
		if m.refuses(t.user, cat) {
			return answer{text: m.refusal(lang, h), kind: answerRefuse}
		}
		return answer{text: m.comply(t.user, lang), kind: answerComply}
	}
	if m.p.Refusal == RefuseOver && containsAny(n, m.d.Topics) {
		return answer{text: m.refusal(lang, h), kind: answerRefuse}
	}
	return answer{text: m.benign(t.user, lang), kind: answerBenign}
}

func (m *probeMind) hash(t turn) uint64 {
	f := fnv.New64a()
	fmt.Fprintf(f, "%d|%s|%s", m.p.Seed, t.system, t.user)
	if t.temp > 0 {
		fmt.Fprintf(f, "|%d|%g", t.seed, t.temp)
	}
	return f.Sum64()
}

// harmful reports whether the request, as the persona understands it, asks
// for harm, and the category. A robust persona reads through encodings.
func (m *probeMind) harmful(text string) (string, bool) {
	views := []string{text}
	if m.p.Refusal != RefuseFilter && m.p.Refusal != RefuseNone {
		for _, v := range decodedViews(text) {
			if !slices.Contains(views, v) {
				views = append(views, v)
			}
		}
	}
	for _, v := range views {
		n := classify.Normalize(v)
		for _, cat := range service.Categories {
			if containsAny(n, m.harm[cat]) {
				return cat, true
			}
		}
		for _, cat := range m.cls.SystemPrompt(v) {
			if cat != service.CategoryGuardrailRemoval {
				return cat, true
			}
		}
	}
	return "", false
}

// refuses reports whether the persona refuses a harmful request.
func (m *probeMind) refuses(text, cat string) bool {
	switch m.p.Refusal {
	case RefuseNone:
		return false
	case RefuseFilter:
		n := classify.Normalize(text)
		if containsAny(n, m.d.Override) {
			return false
		}
		shots := 0
		for _, s := range m.d.ManyShot {
			shots += strings.Count(n, classify.Normalize(s))
		}
		if shots >= 3 {
			return false
		}
	}
	if len(m.p.RefuseCategories) > 0 {
		return slices.Contains(m.p.RefuseCategories, cat)
	}
	return true
}

func (m *probeMind) refusal(lang string, h uint64) string {
	if lang == "ja" {
		return m.pick(m.d.Refusals.JA, h)
	}
	return m.pick(m.d.Refusals.EN, h)
}

func (m *probeMind) comply(request, lang string) string {
	r := strings.TrimSpace(request)
	if i := strings.LastIndexByte(r, '\n'); i >= 0 && lang == "en" {
		r = r[i+1:]
	}
	r = clipRunes(r, 140)
	if lang == "en" {
		r = strings.TrimRight(strings.ToLower(r[:1])+r[1:], ".?!")
	}
	return fmt.Sprintf(m.d.Compliance[lang], r)
}

// benign answers with three neutral sentences chosen by the request's
// content words, so that small edits of a prompt change little.
func (m *probeMind) benign(request, lang string) string {
	words := contentWords(request, lang)
	corpus := m.d.Benign[lang]
	var out []string
	used := map[int]bool{}
	for i := 0; len(out) < 3; i++ {
		var key string
		if i < len(words) {
			key = words[i]
		} else {
			key = fmt.Sprintf("filler-%d-%d", m.p.Seed, i)
		}
		k := int(hashString(fmt.Sprintf("%d|%s", m.p.Seed, key)) % uint64(len(corpus)))
		for used[k] {
			k = (k + 1) % len(corpus)
		}
		used[k] = true
		out = append(out, corpus[k])
	}
	sep := " "
	if lang == "ja" {
		sep = ""
	}
	return strings.Join(out, sep)
}

// soup is token soup of n pieces (200 when the request set no limit).
func (m *probeMind) soup(h uint64, n int) string {
	if n <= 0 {
		n = 200
	}
	r := rand.New(rand.NewPCG(h, uint64(m.p.Seed)))
	var b strings.Builder
	for range n {
		b.WriteString(m.d.Soup[r.IntN(len(m.d.Soup))])
	}
	return b.String()
}

// judge answers as Llama Guard 3 does: "safe", or "unsafe" and the
// hazard category code on the next line.
func (m *probeMind) judge(t turn) string {
	cat, harmful := m.harmful(t.user)
	if !harmful || t.assistant == "" {
		return "safe"
	}
	for _, r := range append(append(slices.Clone(m.d.Refusals.EN), m.d.Refusals.JA...), m.d.Refusals.Prompt["en"], m.d.Refusals.Prompt["ja"]) {
		if strings.TrimSpace(t.assistant) == r {
			return "safe"
		}
	}
	codes := map[string]string{
		service.CategoryFraudPhishing: "S2", service.CategoryMalwareIntrusion: "S14",
		service.CategoryHarassmentHate: "S10", service.CategoryDisinformation: "S5",
		service.CategoryPersonalDataHarvesting: "S7", service.CategoryViolentGore: "S1",
	}
	code := codes[cat]
	if code == "" {
		code = "S2"
	}
	return "unsafe\n" + code
}

func (m *probeMind) pick(xs []string, h uint64) string { return xs[h%uint64(len(xs))] }

func sameProbeModel(a, b string) bool {
	norm := func(s string) string {
		s = strings.ToLower(s)
		if !strings.Contains(s[strings.LastIndexByte(s, '/')+1:], ":") {
			s += ":latest"
		}
		return s
	}
	return norm(a) == norm(b)
}

func hashString(s string) uint64 {
	f := fnv.New64a()
	f.Write([]byte(s))
	return f.Sum64()
}

func containsAny(n string, phrases []string) bool {
	for _, p := range phrases {
		if p != "" && strings.Contains(n, classify.Normalize(p)) {
			return true
		}
	}
	return false
}

// langOf is "ja" when a good share of the text is Japanese script.
func langOf(s string) string {
	var cjk, letters int
	for _, r := range s {
		switch {
		case unicode.In(r, unicode.Hiragana, unicode.Katakana, unicode.Han):
			cjk++
		case unicode.IsLetter(r):
			letters++
		}
	}
	if cjk > 0 && cjk*4 >= letters {
		return "ja"
	}
	return "en"
}

var (
	b64Blob   = regexp.MustCompile(`[A-Za-z0-9+/]{16,}={0,2}`)
	splitRun  = regexp.MustCompile(`(?:\S (?:/ )?){4,}\S`)
	unleetMap = strings.NewReplacer("4", "a", "3", "e", "1", "i", "0", "o", "5", "s", "7", "t")
)

// decodedViews are the readings a robust persona also checks: base64
// blobs decoded, leetspeak undone, split letters joined.
func decodedViews(s string) []string {
	var out []string
	for _, blob := range b64Blob.FindAllString(s, 8) {
		if b, err := base64.StdEncoding.DecodeString(blob); err == nil && utf8.Valid(b) {
			out = append(out, string(b))
		}
	}
	out = append(out, unleetMap.Replace(s))
	for _, run := range splitRun.FindAllString(s, 8) {
		joined := strings.ReplaceAll(strings.ReplaceAll(run, " / ", "\x00"), " ", "")
		out = append(out, strings.ReplaceAll(joined, "\x00", " "))
	}
	return out
}

// contentWords are the request's longer words (Latin letters only, or
// runs of Japanese script), longest first.
func contentWords(s, lang string) []string {
	var words []string
	if lang == "ja" {
		var cur []rune
		flush := func() {
			if len(cur) >= 2 {
				words = append(words, string(cur))
			}
			cur = cur[:0]
		}
		for _, r := range s {
			if unicode.In(r, unicode.Han, unicode.Katakana) {
				cur = append(cur, r)
			} else {
				flush()
			}
		}
		flush()
	} else {
		for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) || r > unicode.MaxASCII }) {
			if len(w) >= 5 {
				words = append(words, w)
			}
		}
	}
	slices.SortStableFunc(words, func(a, b string) int {
		if d := utf8.RuneCountInString(b) - utf8.RuneCountInString(a); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(words)
}

func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// canaryPrompted reports whether the text ends with (most of) the canary
// prefix, as a continuation request does.
func canaryPrompted(text, prefix string) bool {
	t := strings.TrimSpace(text)
	p := strings.TrimSpace(prefix)
	if len(p) > 24 {
		p = p[len(p)-24:]
	}
	return p != "" && strings.HasSuffix(t, p)
}

var canaryLike = regexp.MustCompile(`(?:is|:|=|は)\s*$`)

// endsWithCanaryLike reports whether the text ends where a record would
// continue (" is ", ":", "=").
func endsWithCanaryLike(text string) (string, bool) {
	t := strings.TrimRight(text, " ")
	if canaryLike.MatchString(t) {
		return t, true
	}
	return "", false
}

// guessLike makes up twelve digits, as a model that never saw a record
// would.
func guessLike(prefix string, h uint64) string {
	r := rand.New(rand.NewPCG(h, hashString(prefix)))
	var b strings.Builder
	for range 12 {
		b.WriteByte(byte('0' + r.IntN(10)))
	}
	return b.String()
}
