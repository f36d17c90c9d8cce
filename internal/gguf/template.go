package gguf

import (
	"fmt"

	"golang.org/x/text/unicode/norm"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/llmfence/llmfence/internal/verdict"
)

// MaxTemplate is how many bytes of a chat template are analysed.
const MaxTemplate = 64 << 10

// maxEvidence is how many pieces of evidence one template finding lists.
const maxEvidence = 3

var (
	reDunder      = regexp.MustCompile(`__[A-Za-z][A-Za-z0-9_]*__`)
	reEscapedUnd  = regexp.MustCompile(`\\(x5[fF]|u005[fF]|U0000005[fF]|137|N\{LOW LINE\})`)
	reURL         = regexp.MustCompile(`(?i)\b(?:https?|ftp|wss?|file|data)://[^\s'"<>{}|\\^` + "`" + `]+|\bwww\.[a-z0-9-]+\.[a-z]{2,}[^\s'"<>]*`)
	reSpecialTok  = regexp.MustCompile(`<\|[^|>]{0,40}\|>|<｜[^｜]{0,40}｜>|\[/?[A-Z_]{2,20}\]|</?[A-Za-z_]{1,30}>`)
	reGeneration  = regexp.MustCompile(`\{%-?\s*(?:end)?generation\s*-?%\}`)
	reLoadTag     = regexp.MustCompile(`\{%[-+]?\s*(include|import|extends|from)\s`)
	reJinjaBlocks = regexp.MustCompile(`(?s)\{[{%#].*?[}%#]\}`)
	// fallback patterns, used when the Jinja parser rejects a template
	reFbAttr    = regexp.MustCompile(`attr\s*\(\s*(['"]_|[^'")\s])`)
	reFbConcat  = regexp.MustCompile(`['"]_+['"]\s*[~+]|[~+]\s*['"]_+['"]`)
	reFbPrivate = regexp.MustCompile(`\.\s*_[A-Za-z]`)
	reFbTrigger = regexp.MustCompile(`(?s)\{%-?\s*(?:el)?if\b(.*?)-?%\}`)
	reFbLiteral = regexp.MustCompile(`'([^'\\]{1,200})'|"([^"\\]{1,200})"`)
)

// templateReport collects the evidence of one template analysis.
type templateReport struct {
	evidence map[string][]string
	order    []string
}

func (r *templateReport) add(id, ev string) {
	if r.evidence == nil {
		r.evidence = map[string][]string{}
	}
	if _, ok := r.evidence[id]; !ok {
		r.order = append(r.order, id)
	}
	ev = clip(strings.Join(strings.Fields(ev), " "), 120)
	if slices.Contains(r.evidence[id], ev) {
		return
	}
	r.evidence[id] = append(r.evidence[id], ev)
}

// TemplateFindings analyses a Jinja chat template without rendering it and
// returns one finding per kind of problem, each listing its first pieces of
// evidence. arch is the model's general.architecture ("" if unknown) and
// selects the known templates the template is compared with. Offsets of
// the findings are -1; Scan replaces them with the key's offset. The error
// is for the embedded checks failing to load.
func TemplateFindings(tmpl, arch string) ([]verdict.Finding, error) {
	d, err := loadData()
	if err != nil {
		return nil, fmt.Errorf("loading GGUF checks: %w", err)
	}
	return d.templateFindings(tmpl, arch), nil
}

func (d *data) templateFindings(tmpl, arch string) []verdict.Finding {
	var r templateReport
	if len(tmpl) > MaxTemplate {
		r.add("GGUF-057", fmt.Sprintf("%d bytes; the first %d were analysed", len(tmpl), MaxTemplate))
		cut := MaxTemplate
		for cut > 0 && !utf8.RuneStart(tmpl[cut]) {
			cut--
		}
		tmpl = tmpl[:cut]
	}
	if m := reEscapedUnd.FindString(tmpl); m != "" {
		r.add("GGUF-050", fmt.Sprintf("escaped underscore %s spells a hidden dunder", m))
	}
	var literals []string
	// A template gonja cannot parse is no finding by itself: tags gonja
	// rejects are checked token by token, the rest through the AST; only a
	// template that cannot be parsed at all falls back to tokens entirely.
	root, repaired, err := parseTolerant(reGeneration.ReplaceAllString(tmpl, ""))
	if err == nil {
		literals = analyseAST(root, d.tmpl, &r)
		for _, tag := range repaired {
			literals = append(literals, analyseTokens(tag, d.tmpl, &r)...)
		}
	} else {
		literals = analyseTokens(tmpl, d.tmpl, &r)
	}
	text := strings.Join(literals, "\n")
	for _, u := range reURL.FindAllString(text, maxEvidence) {
		r.add("GGUF-051", u)
	}
	for _, lit := range literals {
		for _, m := range runs(lit, isBase64Char, 64) {
			m = strings.TrimLeft(m, "=")
			if len(m) >= 64 && looksEncoded(m) {
				r.add("GGUF-052", fmt.Sprintf("base64-like run of %d characters: %s", len(m), m))
			}
		}
		for _, m := range runs(lit, isHexChar, 64) {
			if looksHex(m) {
				r.add("GGUF-052", fmt.Sprintf("hex run of %d characters: %s", len(m), m))
			}
		}
	}
	// Instructions never span a sentence, and matching sentence by
	// sentence keeps the regular expressions on short inputs. The text is
	// matched as a reader (the model) sees it — invisible characters
	// dropped, compatibility forms and look-alike letters folded — and
	// also reversed, since a template can reverse it at render time or
	// hide it written backwards.
	raw := reSpecialTok.ReplaceAllString(strings.Join(literals, " "), " ")
	light, full := d.tmpl.normalize(raw, false), d.tmpl.normalize(raw, true)
	for _, text := range []string{light, reverseRunes(light), full, reverseRunes(full)} {
		for _, sent := range sentences(text) {
			for _, in := range d.tmpl.Instructions {
				if loc := in.re.FindStringIndex(sent); loc != nil {
					r.add("GGUF-053", fmt.Sprintf("%s: %q", in.ID, clip(strings.TrimSpace(sent), 100)))
				}
			}
		}
	}
	if fam, ok := d.tmpl.familiesFor(arch); ok && !matchesAny(tmpl, fam) {
		names := make([]string, len(fam))
		for i, f := range fam {
			names[i] = f.Name
		}
		r.add("GGUF-055", fmt.Sprintf("architecture %q; known templates: %s", arch, strings.Join(names, ", ")))
	}

	out := make([]verdict.Finding, 0, len(r.order))
	ids := slices.Clone(r.order)
	slices.Sort(ids)
	for _, id := range ids {
		ev := r.evidence[id]
		detail := strings.Join(ev[:min(len(ev), maxEvidence)], "; ")
		if len(ev) > maxEvidence {
			detail += fmt.Sprintf("; and %d more", len(ev)-maxEvidence)
		}
		out = append(out, d.cat.New(id, detail, -1))
	}
	return out
}

// looksEncoded rejects runs that are plain words or a single repeated
// character: an encoded blob mixes cases and digits.
func looksEncoded(s string) bool {
	var upper, lower, digit bool
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= '0' && c <= '9':
			digit = true
		}
	}
	return upper && lower && digit
}

// looksHex wants digits and letters and some variety, so that a run of
// one repeated letter is not taken for data.
func looksHex(s string) bool {
	var letter, digit bool
	seen := map[byte]bool{}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		seen[c] = true
		switch {
		case c >= 'a' && c <= 'f':
			letter = true
		case c >= '0' && c <= '9':
			digit = true
		}
	}
	return letter && digit && len(seen) >= 8
}

// sentences splits s after sentence ends and newlines, in pieces of at
// most 512 bytes.
func sentences(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		end := c == '\n' || (c == '.' || c == '!' || c == '?') && (i+1 == len(s) || s[i+1] == ' ' || s[i+1] == '\n')
		if !end && i-start < 512 {
			continue
		}
		if !end { // cut at a rune boundary
			for i > start && !utf8.RuneStart(s[i+1]) {
				i--
			}
		}
		out = append(out, s[start:i+1])
		start = i + 1
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

func isBase64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
}

func isHexChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// runs returns the maximal runs of bytes accepted by ok that are at least
// n long.
func runs(s string, ok func(byte) bool, n int) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i < len(s) && ok(s[i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 && i-start >= n {
			out = append(out, s[start:i])
		}
		start = -1
	}
	return out
}

func (t *templateData) familiesFor(arch string) ([]family, bool) {
	var out []family
	for _, f := range t.Families {
		if slices.Contains(f.Architectures, arch) {
			out = append(out, f)
		}
	}
	return out, len(out) > 0
}

func matchesAny(tmpl string, fams []family) bool {
	for _, f := range fams {
		all := true
		for _, m := range f.Markers {
			if !strings.Contains(tmpl, m) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func (t *templateData) benignTest(lit string) bool {
	for _, re := range t.benign {
		if re.MatchString(lit) {
			return true
		}
	}
	return false
}

// analyseAST judges the parsed template by what it computes (see
// jinjaeval.go) and returns its literal text: data between tags, string
// literals, and every value an output folds to, plus the rendered
// skeleton (data and folded outputs in document order, joined without
// separators) so that instructions split across pieces are whole again.
func analyseAST(root *jnode, td *templateData, r *templateReport) []string {
	e := newEvaluator(td, r)
	e.bindings(root)
	var literals []string
	var skel strings.Builder
	root.each(func(x *jnode) {
		switch x.Kind {
		case "Comment":
			return
		case "Data":
			if strings.TrimSpace(x.Text) != "" {
				literals = append(literals, x.Text)
			}
			if skel.Len() < MaxTemplate {
				skel.WriteString(x.Text)
			}
		case "String":
			if strings.TrimSpace(x.Text) != "" {
				literals = append(literals, x.Text)
			}
			if reDunder.MatchString(x.Text) {
				r.add("GGUF-050", fmt.Sprintf("string %q names a Python internal", x.Text))
			}
		case "Name":
			if strings.HasPrefix(x.Text, "_") {
				r.add("GGUF-050", fmt.Sprintf("name %s", x.Text))
			}
		case "GetAttribute", "VariablePart":
			e.checkAccess(x, constStr(x.Text), x.kid("Node"))
		case "GetItem":
			e.checkAccess(x, e.eval(x.kid("Arg"), 0), x.kid("Node"))
		case "FilterCall":
			e.checkFilterAccess(x)
		case "BinaryExpression", "FilteredExpression", "Call", "GetSlice":
			if v := e.eval(x, 0); v.known && v.computed {
				for _, s := range v.strs {
					if reDunder.MatchString(s) {
						r.add("GGUF-050", fmt.Sprintf("strings combined into %q", clip(s, 60)))
					}
					if len(s) > 0 {
						literals = append(literals, s)
					}
				}
			}
		case "IncludeControlStructure", "ImportControlStructure", "FromImportControlStructure", "ExtendsControlStructure":
			r.add("GGUF-058", strings.TrimSuffix(x.Kind, "ControlStructure"))
		case "IfControlStructure":
			if emits(x) {
				for _, c := range x.kids("Conditions") {
					e.triggers(c)
				}
			}
		case "ForControlStructure":
			if c := x.kid("IfCondition"); c != nil && emits(x) {
				e.triggers(c)
			}
		case "SetControlStructure":
			for _, c := range []*jnode{x.kid("expression"), x.kid("condition")} {
				if c != nil {
					e.triggers(c)
				}
			}
		case "Output":
			if c := x.kid("Condition"); c != nil {
				e.triggers(c)
			}
			e.triggerCalls(x.kid("Expression"))
			v := e.eval(x, 0)
			if v.known {
				for _, s := range v.strs {
					if strings.TrimSpace(s) != "" {
						literals = append(literals, s)
					}
				}
				if skel.Len() < MaxTemplate {
					skel.WriteString(v.strs[0])
				}
			} else if skel.Len() < MaxTemplate {
				skel.WriteString("\n")
			}
		}
	})
	return append(literals, skel.String())
}

// litsOf returns the constant strings a value may be (a folded string or
// a list of them).
func litsOf(v aval) []string {
	if v.known {
		return v.strs
	}
	var out []string
	if v.isLst {
		for _, it := range v.list {
			if it.known {
				out = append(out, it.strs...)
			}
		}
	}
	return out
}

// triggers reports the literals a condition compares message text with,
// in any spelling: in, ==, !=, Jinja tests, string methods (startswith,
// find, count, split, replace ...), on text reached through aliases,
// loops, filters and slices, against literals folded from constants
// (reversed, concatenated, kept in variables or lists).
func (e *evaluator) triggers(cond *jnode) {
	cond.each(func(x *jnode) {
		switch x.Kind {
		case "BinaryExpression":
			op := x.kid("Operator")
			if op == nil {
				return
			}
			switch op.Text {
			case "==", "!=", "in", "not in", "<", ">", "<=", ">=":
				e.compare(e.eval(x.kid("Left"), 0), e.eval(x.kid("Right"), 0))
			}
		case "TestExpression":
			tc := x.kid("Test")
			if tc == nil {
				return
			}
			switch tc.Text {
			case "in", "eq", "equalto", "==", "ne", "!=", "sameas", "contains":
				v := e.eval(x.kid("Expression"), 0)
				for _, a := range tc.kids("Args") {
					e.compare(v, e.eval(a, 0))
				}
			}
		}
	})
	e.triggerCalls(cond)
}

// triggerCalls reports string methods and filters that test or cut
// message text by a literal (text.startswith('x'), text|replace('x', ”)).
func (e *evaluator) triggerCalls(n *jnode) {
	n.each(func(x *jnode) {
		switch x.Kind {
		case "Call":
			fn := x.kid("Func")
			if fn == nil || fn.Kind != "GetAttribute" || !e.td.Content.tests[fn.Text] {
				return
			}
			if obj := e.eval(fn.kid("Node"), 0); !obj.text {
				return
			}
			for _, a := range x.kids("Args") {
				e.note("message text ."+fn.Text+"()", litsOf(e.eval(a, 0)), false)
			}
		case "FilteredExpression":
			v := e.eval(x.kid("Expression"), 0)
			for _, f := range x.kids("Filters") {
				if v.text && f.Text == "replace" {
					for _, a := range f.kids("Args")[:min(1, len(f.kids("Args")))] {
						e.note("message text |replace", litsOf(e.eval(a, 0)), false)
					}
				}
				v = e.filter(v, f, 0)
			}
		}
	})
}

// compare reports a comparison of message text (or a content part) with
// literals.
func (e *evaluator) compare(l, r aval) {
	switch {
	case l.text && !r.text:
		e.note("message text compared with", litsOf(r), false)
	case r.text && !l.text:
		e.note("message text tested for", litsOf(l), false)
	case l.part && !r.part:
		e.note("content part compared with", litsOf(r), true)
	case r.part && !l.part:
		e.note("content part tested for", litsOf(l), true)
	}
}

func (e *evaluator) note(how string, lits []string, part bool) {
	for _, l := range lits {
		if e.td.benignTest(l) || part && e.td.Content.partKeys[l] {
			continue
		}
		e.r.add("GGUF-054", fmt.Sprintf("%s %q", how, l))
	}
}

// emits reports whether any branch of an if produces output or sets a
// variable.
func emits(ifNode *jnode) bool {
	found := false
	for _, w := range append(ifNode.kids("Wrappers"), ifNode.kids("BodyWrapper")...) {
		w.each(func(x *jnode) {
			switch x.Kind {
			case "Output", "SetControlStructure":
				found = true
			case "Data":
				found = found || strings.TrimSpace(x.Text) != ""
			}
		})
	}
	return found
}

// analyseTokens is the fallback when the Jinja parser rejects a template:
// pattern checks on the raw text. It returns the text as one literal.
func analyseTokens(tmpl string, td *templateData, r *templateReport) []string {
	code := strings.Join(reJinjaBlocks.FindAllString(tmpl, -1), "\n")
	for _, m := range reDunder.FindAllString(code, maxEvidence) {
		r.add("GGUF-050", m)
	}
	for _, re := range []*regexp.Regexp{td.fallback.global, reFbAttr, reFbConcat, reFbPrivate} {
		for _, m := range re.FindAllString(code, maxEvidence) {
			r.add("GGUF-050", m)
		}
	}
	for _, m := range reLoadTag.FindAllStringSubmatch(tmpl, maxEvidence) {
		r.add("GGUF-058", m[1])
	}
	for _, m := range reFbTrigger.FindAllStringSubmatch(tmpl, -1) {
		cond := m[1]
		if !td.fallback.content.MatchString(cond) || !td.fallback.testOp.MatchString(cond) {
			continue
		}
		for _, lm := range reFbLiteral.FindAllStringSubmatch(cond, -1) {
			lit := lm[1] + lm[2]
			if td.Content.partKeys[lit] || td.Content.roleWords[lit] || td.benignTest(lit) {
				continue
			}
			r.add("GGUF-054", fmt.Sprintf("condition tests %q", lit))
		}
	}
	return []string{tmpl}
}

// normalize prepares text for instruction matching: invisible characters
// removed, NFKC (full-width and stylised letters to plain ones), and with
// confusables Cyrillic and Greek look-alikes turned into the Latin letters
// they imitate (matched both ways, so that real Russian or Greek text is
// read as itself too).
func (t *templateData) normalize(s string, confusables bool) string {
	var b strings.Builder
	for _, r := range norm.NFKC.String(s) {
		if t.invisible[r] {
			continue
		}
		if to, ok := t.confuse[r]; ok && confusables {
			r = to
		}
		b.WriteRune(r)
	}
	return b.String()
}
