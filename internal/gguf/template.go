package gguf

import (
	"fmt"
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

// Global objects of the Jinja environment whose attributes lead to Python
// internals, and attribute names that only code execution needs.
var (
	escapeGlobals = map[string]bool{
		"lipsum": true, "cycler": true, "joiner": true, "namespace": true,
		"self": true, "config": true, "request": true, "range": true,
		"dict": true, "url_for": true, "get_flashed_messages": true,
	}
	escapeAttrs = map[string]bool{
		"popen": true, "subprocess": true, "import_module": true, "mro": true,
		"subclasses": true, "f_globals": true, "gi_frame": true,
		"func_globals": true, "check_output": true, "getattr": true,
	}
	// Names a template uses for message text.
	contentNames = map[string]bool{
		"content": true, "text": true, "prompt": true, "query": true,
		"input": true, "user_input": true, "last_query": true, "question": true,
	}
	// Literals a condition mentions next to content that are not triggers
	// (fallback scan only).
	fallbackRoleWords = map[string]bool{
		"content": true, "role": true, "user": true, "assistant": true, "system": true,
		"tool": true, "ipython": true, "developer": true, "function": true, "model": true,
	}
	// String methods that test content for a literal.
	contentTests = map[string]bool{
		"startswith": true, "endswith": true, "find": true, "rfind": true,
		"count": true, "index": true, "rindex": true, "__contains__": true,
	}
)

var (
	reDunder      = regexp.MustCompile(`__[A-Za-z][A-Za-z0-9_]*__`)
	reEscapedUnd  = regexp.MustCompile(`\\(x5[fF]|u005[fF]|U0000005[fF]|137|N\{LOW LINE\})`)
	reURL         = regexp.MustCompile(`(?i)\b(?:https?|ftp|wss?|file|data)://[^\s'"<>{}|\\^` + "`" + `]+|\bwww\.[a-z0-9-]+\.[a-z]{2,}[^\s'"<>]*`)
	reSpecialTok  = regexp.MustCompile(`<\|[^|>]{0,40}\|>|<｜[^｜]{0,40}｜>|\[/?[A-Z_]{2,20}\]|</?[A-Za-z_]{1,30}>`)
	reGeneration  = regexp.MustCompile(`\{%-?\s*(?:end)?generation\s*-?%\}`)
	reLoadTag     = regexp.MustCompile(`\{%[-+]?\s*(include|import|extends|from)\s`)
	reJinjaBlocks = regexp.MustCompile(`(?s)\{[{%#].*?[}%#]\}`)
	// fallback patterns, used when the Jinja parser rejects a template
	reFbGlobal  = regexp.MustCompile(`\b(lipsum|cycler|joiner|namespace|self|config|request)\s*(\.\s*_|\.\s*\w+\s*\.|\[|\|\s*attr)`)
	reFbAttr    = regexp.MustCompile(`attr\s*\(\s*(['"]_|[^'")\s])`)
	reFbConcat  = regexp.MustCompile(`['"]_+['"]\s*[~+]|[~+]\s*['"]_+['"]`)
	reFbPrivate = regexp.MustCompile(`\.\s*_[A-Za-z]`)
	reFbTrigger = regexp.MustCompile(`(?s)\{%-?\s*(?:el)?if\b(.*?)-?%\}`)
	reFbLiteral = regexp.MustCompile(`'([^'\\]{1,200})'|"([^"\\]{1,200})"`)
	reFbContent = regexp.MustCompile(`\b(content|text|prompt|query|input|user_input|last_query|question)\b|\[\s*['"]content['"]\s*\]`)
	reFbTestOp  = regexp.MustCompile(`\bin\b|==|!=|\.(startswith|endswith|find|rfind|count|index)\s*\(`)
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
// the findings are -1; Scan replaces them with the key's offset.
func TemplateFindings(tmpl, arch string) []verdict.Finding {
	d := mustData()
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
	root, err := parseJinja(reGeneration.ReplaceAllString(tmpl, ""))
	if err == nil {
		literals = analyseAST(root, d.tmpl, &r)
	} else {
		r.add("GGUF-056", fallbackReason(err))
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
	// sentence keeps the regular expressions on short inputs.
	plain := reSpecialTok.ReplaceAllString(strings.Join(literals, " "), " ")
	for _, sent := range sentences(plain) {
		for _, in := range d.tmpl.Instructions {
			if loc := in.re.FindStringIndex(sent); loc != nil {
				r.add("GGUF-053", fmt.Sprintf("%s: %q", in.ID, strings.TrimSpace(sent)))
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

func fallbackReason(err error) string {
	return "checked with a token-level scan instead: " + clip(err.Error(), 160)
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

// analyseAST walks the parsed template and returns its literal text (data
// between tags and string literals, in document order).
func analyseAST(root *jnode, td *templateData, r *templateReport) []string {
	var literals []string
	// Constants assigned with {% set name = 'literal' %}, so that a trigger
	// kept in a variable is still seen. A name assigned twice is dropped.
	env := map[string]string{}
	assigned := map[string]int{}
	root.each(func(x *jnode) {
		if x.Kind != "SetControlStructure" {
			return
		}
		if tg := x.kid("target"); tg != nil && tg.Kind == "Name" {
			assigned[tg.Text]++
			if v, ok := fold(x.kid("expression")); ok && assigned[tg.Text] == 1 {
				env[tg.Text] = v
			} else {
				delete(env, tg.Text)
			}
		}
	})
	var walk func(n *jnode)
	walk = func(n *jnode) {
		n.each(func(x *jnode) {
			if x.Kind == "Comment" {
				return
			}
			switch x.Kind {
			case "Data", "String":
				if strings.TrimSpace(x.Text) != "" {
					literals = append(literals, x.Text)
				}
				if x.Kind == "String" && reDunder.MatchString(x.Text) {
					r.add("GGUF-050", fmt.Sprintf("string %q names a Python internal", x.Text))
				}
			case "Name":
				if strings.HasPrefix(x.Text, "_") {
					r.add("GGUF-050", fmt.Sprintf("name %s", x.Text))
				}
			case "GetAttribute", "VariablePart":
				if strings.HasPrefix(x.Text, "_") || escapeAttrs[x.Text] {
					r.add("GGUF-050", fmt.Sprintf("attribute .%s", x.Text))
				}
				if b := x.kid("Node"); b != nil && b.Kind == "Name" && escapeGlobals[b.Text] {
					r.add("GGUF-050", fmt.Sprintf("%s.%s reaches the template globals", b.Text, x.Text))
				}
			case "GetItem":
				if s, ok := fold(x.kid("Arg")); ok && strings.HasPrefix(s, "_") {
					r.add("GGUF-050", fmt.Sprintf("item [%q]", s))
				}
				if b := x.kid("Node"); b != nil && b.Kind == "Name" && escapeGlobals[b.Text] {
					r.add("GGUF-050", fmt.Sprintf("%s[...] reaches the template globals", b.Text))
				}
			case "FilteredExpression":
				if s, ok := fold(x); ok && strings.Contains(s, "__") {
					r.add("GGUF-050", fmt.Sprintf("strings joined into %q", s))
				}
			case "FilterCall":
				if x.Text == "attr" {
					args := x.kids("Args")
					s, ok := "", false
					if len(args) > 0 {
						s, ok = fold(args[0])
					}
					switch {
					case !ok:
						r.add("GGUF-050", "attr() with a computed attribute name")
					case strings.HasPrefix(s, "_"):
						r.add("GGUF-050", fmt.Sprintf("attr(%q)", s))
					}
				}
			case "BinaryExpression":
				if s, ok := fold(x); ok && strings.Contains(s, "__") {
					r.add("GGUF-050", fmt.Sprintf("strings concatenated into %q", s))
				}
			case "IncludeControlStructure", "ImportControlStructure", "FromImportControlStructure", "ExtendsControlStructure":
				r.add("GGUF-058", strings.TrimSuffix(x.Kind, "ControlStructure"))
			case "IfControlStructure":
				if emits(x) {
					for _, c := range x.kids("Conditions") {
						for _, trig := range triggers(c, td, env) {
							r.add("GGUF-054", trig)
						}
					}
				}
			case "Output":
				if c := x.kid("Condition"); c != nil {
					for _, trig := range triggers(c, td, env) {
						r.add("GGUF-054", trig)
					}
				}
			}
		})
	}
	walk(root)
	return literals
}

// fold evaluates n when it is a constant string expression: a literal, a
// concatenation with + or ~, or a join of a list of literals.
func fold(n *jnode) (string, bool) { return foldIn(n, nil) }

// foldIn is fold with the constants assigned by {% set %} in env.
func foldIn(n *jnode, env map[string]string) (string, bool) {
	if n == nil {
		return "", false
	}
	switch n.Kind {
	case "String":
		return n.Text, true
	case "Name":
		v, ok := env[n.Text]
		return v, ok
	case "BinaryExpression":
		op := n.kid("Operator")
		if op == nil || (op.Text != "+" && op.Text != "~") {
			return "", false
		}
		l, ok1 := foldIn(n.kid("Left"), env)
		rr, ok2 := foldIn(n.kid("Right"), env)
		if !ok1 || !ok2 || len(l)+len(rr) > 4096 {
			return "", false
		}
		return l + rr, true
	case "FilteredExpression":
		fs := n.kids("Filters")
		if len(fs) != 1 || fs[0].Text != "join" {
			return "", false
		}
		list := n.kid("Expression")
		if list == nil || (list.Kind != "List" && list.Kind != "Tuple") {
			return "", false
		}
		sep := ""
		if a := fs[0].kids("Args"); len(a) > 0 {
			var ok bool
			if sep, ok = foldIn(a[0], env); !ok {
				return "", false
			}
		}
		var parts []string
		for _, e := range list.kids("Val") {
			s, ok := foldIn(e, env)
			if !ok {
				return "", false
			}
			parts = append(parts, s)
		}
		out := strings.Join(parts, sep)
		return out, len(out) <= 4096
	}
	return "", false
}

// refsContent reports whether the expression reads message text.
func refsContent(n *jnode) bool {
	found := false
	n.each(func(x *jnode) {
		switch x.Kind {
		case "Name":
			found = found || contentNames[x.Text]
		case "GetAttribute", "VariablePart":
			found = found || x.Text == "content"
		case "GetItem":
			if s, ok := fold(x.kid("Arg")); ok && s == "content" {
				found = true
			}
		}
	})
	return found
}

// literalsOf returns the constant strings of a literal, list or tuple.
func literalsOf(n *jnode, env map[string]string) []string {
	if s, ok := foldIn(n, env); ok {
		return []string{s}
	}
	if n != nil && (n.Kind == "List" || n.Kind == "Tuple") {
		var out []string
		for _, e := range n.kids("Val") {
			if s, ok := foldIn(e, env); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// triggers returns the non-markup literals a condition tests message
// content against.
func triggers(cond *jnode, td *templateData, env map[string]string) []string {
	var out []string
	note := func(how string, lits []string) {
		for _, l := range lits {
			if !td.benignTest(l) {
				out = append(out, fmt.Sprintf("%s %q", how, l))
			}
		}
	}
	cond.each(func(x *jnode) {
		switch x.Kind {
		case "TestExpression":
			tc := x.kid("Test")
			if tc == nil || tc.Text != "in" {
				return
			}
			needle, hay := x.kid("Expression"), tc.kid("Args")
			if hay != nil && refsContent(hay) {
				note("content tested for", literalsOf(needle, env))
			} else if needle != nil && refsContent(needle) {
				note("content compared with", literalsOf(hay, env))
			}
		case "BinaryExpression":
			op := x.kid("Operator")
			if op == nil {
				return
			}
			switch op.Text {
			case "==", "!=", "in":
				l, rr := x.kid("Left"), x.kid("Right")
				if refsContent(l) {
					note("content compared with", literalsOf(rr, env))
				} else if refsContent(rr) {
					note("content compared with", literalsOf(l, env))
				}
			}
		case "Call":
			fn := x.kid("Func")
			if fn == nil || fn.Kind != "GetAttribute" || !contentTests[fn.Text] || !refsContent(fn.kid("Node")) {
				return
			}
			for _, a := range x.kids("Args") {
				note("content ."+fn.Text+"()", literalsOf(a, env))
			}
		}
	})
	return out
}

// emits reports whether any branch of an if produces output or sets a
// variable.
func emits(ifNode *jnode) bool {
	found := false
	for _, w := range ifNode.kids("Wrappers") {
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
	for _, re := range []*regexp.Regexp{reFbGlobal, reFbAttr, reFbConcat, reFbPrivate} {
		for _, m := range re.FindAllString(code, maxEvidence) {
			r.add("GGUF-050", m)
		}
	}
	for _, m := range reLoadTag.FindAllStringSubmatch(tmpl, maxEvidence) {
		r.add("GGUF-058", m[1])
	}
	for _, m := range reFbTrigger.FindAllStringSubmatch(tmpl, -1) {
		cond := m[1]
		if !reFbContent.MatchString(cond) || !reFbTestOp.MatchString(cond) {
			continue
		}
		for _, lm := range reFbLiteral.FindAllStringSubmatch(cond, -1) {
			lit := lm[1] + lm[2]
			if fallbackRoleWords[lit] || td.benignTest(lit) {
				continue
			}
			r.add("GGUF-054", fmt.Sprintf("condition tests %q", lit))
		}
	}
	return []string{tmpl}
}
