package gguf

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The chat template is judged by what it computes, not by how it is
// spelled: an abstract evaluation over the Jinja AST folds every
// expression it can to the strings it may produce (concatenation, %, the
// format, replace, join, split, strip and case methods and filters,
// reverse, slices, subscripts of constant lists and strings, {% set %}
// aliases and namespace attributes, loop variables over constant lists,
// every value a reassigned variable takes), and tracks which values are
// message text. Attribute and item names are checked after folding;
// names built at render time that cannot be folded are escape attempts
// in themselves. Triggers are comparisons of message text with a literal
// in any spelling; hidden instructions are matched on the folded output.

// Bounds of the evaluation.
const (
	maxAlternatives = 16   // strings one expression may fold to
	maxFolded       = 4096 // bytes of one folded string
	maxListItems    = 256  // items of a folded list
	maxEvalDepth    = 128  // expression nesting evaluated
)

// aval is what the evaluation knows about a value.
type aval struct {
	strs  []string // possible string values, when known
	known bool     // strs holds every value the expression can take
	list  []aval   // a list or tuple of known length
	isLst bool
	num   bool // a number
	text  bool // derived from message text
	part  bool // a multimodal content part (a dict with a type)
	// computed: built with string operations at render time (whether or
	// not the result could be folded).
	computed bool
}

func constStr(s string) aval { return aval{strs: []string{s}, known: true} }

// union merges the values two assignments or branches may give.
func union(a, b aval) aval {
	out := aval{text: a.text || b.text, part: a.part || b.part, computed: a.computed || b.computed, num: a.num && b.num}
	if a.known && b.known && len(a.strs)+len(b.strs) <= maxAlternatives {
		out.known = true
		out.strs = append(append([]string{}, a.strs...), b.strs...)
		out.strs = dedupe(out.strs)
	}
	if a.isLst && b.isLst && len(a.list) == len(b.list) {
		out.isLst = true
		for i := range a.list {
			out.list = append(out.list, union(a.list[i], b.list[i]))
		}
	}
	return out
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	out := ss[:0]
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// mapStrs applies f to every known alternative.
func (v aval) mapStrs(f func(string) (string, bool)) aval {
	out := aval{text: v.text, computed: true}
	if !v.known {
		return out
	}
	for _, s := range v.strs {
		r, ok := f(s)
		if !ok || len(r) > maxFolded {
			return aval{text: v.text, computed: true}
		}
		out.strs = append(out.strs, r)
	}
	out.known = true
	out.strs = dedupe(out.strs)
	return out
}

// cross combines every alternative of a with every one of b.
func cross(a, b aval, f func(x, y string) (string, bool)) aval {
	out := aval{text: a.text || b.text, computed: true}
	if !a.known || !b.known || len(a.strs)*len(b.strs) > maxAlternatives {
		return out
	}
	for _, x := range a.strs {
		for _, y := range b.strs {
			r, ok := f(x, y)
			if !ok || len(r) > maxFolded {
				return aval{text: a.text || b.text, computed: true}
			}
			out.strs = append(out.strs, r)
		}
	}
	out.known = true
	out.strs = dedupe(out.strs)
	return out
}

// evaluator holds the variables of one template.
type evaluator struct {
	td   *templateData
	vars map[string]aval
	r    *templateReport
}

func newEvaluator(td *templateData, r *templateReport) *evaluator {
	return &evaluator{td: td, vars: map[string]aval{}, r: r}
}

// assign records a value a variable may take; reassignments accumulate.
func (e *evaluator) assign(name string, v aval) {
	if old, ok := e.vars[name]; ok {
		v = union(old, v)
	}
	e.vars[name] = v
}

// bindings collects the assignments of the template ({% set %}, namespace
// attributes, loop variables), twice so that later assignments that use
// earlier ones are folded too.
func (e *evaluator) bindings(root *jnode) {
	for pass := 0; pass < 2; pass++ {
		e.vars = map[string]aval{}
		walkLoops(root, false, func(x *jnode, inLoop bool) {
			switch x.Kind {
			case "SetControlStructure":
				v := e.eval(x.kid("expression"), 0)
				// An update of a variable from itself inside a loop
				// accumulates over iterations: its value is not folded.
				if name := targetName(x.kid("target")); inLoop && name != "" && mentions(x.kid("expression"), name) {
					v = aval{computed: true, text: v.text}
				}
				if alt := x.kid("alternative"); alt != nil {
					v = union(v, e.eval(alt, 0))
				}
				if x.kid("expression") == nil {
					// {% set x %}...{% endset %}: the body's text
					v = e.bodyText(x.kid("body"))
				}
				if name := targetName(x.kid("target")); name != "" {
					e.assign(name, v)
					// namespace(a=...) gives ns.a its first value.
					if c := x.kid("expression"); c != nil && c.Kind == "Call" {
						if f := c.kid("Func"); f != nil && f.Kind == "Name" && f.Text == "namespace" {
							for _, kw := range c.kids("Kwargs") {
								e.assign(name+"."+kw.Text, e.eval(kw, 0))
							}
						}
					}
				}
			case "ForControlStructure":
				key, value, _ := strings.Cut(x.Text, ",")
				it := e.eval(x.kid("ObjectEvaluator"), 0)
				var item aval
				switch {
				case it.isLst && len(it.list) > 0:
					item = it.list[0]
					for _, l := range it.list[1:] {
						item = union(item, l)
					}
				case it.text:
					// Iterating message content: multimodal parts.
					item = aval{part: true}
				case it.known:
					// Iterating a string: its characters.
					item = aval{computed: true}
				}
				if key != "" {
					e.assign(key, item)
				}
				if value != "" {
					e.assign(value, aval{})
				}
			}
		})
	}
}

// bodyText folds the text of a block-set body when it is constant.
func (e *evaluator) bodyText(w *jnode) aval {
	if w == nil {
		return aval{}
	}
	var b strings.Builder
	known := true
	w.each(func(x *jnode) {
		switch x.Kind {
		case "Data":
			b.WriteString(x.Text)
		case "Output":
			v := e.eval(x.kid("Expression"), 0)
			if v.known && len(v.strs) == 1 {
				b.WriteString(v.strs[0])
			} else {
				known = false
			}
		}
	})
	if !known || b.Len() > maxFolded {
		return aval{computed: true}
	}
	return constStr(b.String())
}

// targetName names an assignment target: "x" or "ns.attr".
func targetName(t *jnode) string {
	switch {
	case t == nil:
		return ""
	case t.Kind == "Name":
		return t.Text
	case t.Kind == "GetAttribute":
		if b := t.kid("Node"); b != nil && b.Kind == "Name" {
			return b.Text + "." + t.Text
		}
	}
	return ""
}

// eval folds an expression.
func (e *evaluator) eval(n *jnode, depth int) aval {
	if n == nil || depth > maxEvalDepth {
		return aval{}
	}
	d := depth + 1
	switch n.Kind {
	case "Kwarg":
		return e.eval(n.kid("Value"), d)
	case "String":
		return constStr(n.Text)
	case "Integer", "Float":
		return aval{strs: []string{n.Text}, known: n.Text != "", num: true}
	case "Bool":
		return aval{}
	case "UnaryExpression":
		t := e.eval(n.kid("Term"), d)
		if n.Text == "-" && t.num && t.known {
			neg := t.mapStrs(func(s string) (string, bool) { return "-" + s, true })
			neg.num, neg.computed = true, false
			return neg
		}
		return aval{num: t.num}
	case "Name":
		if v, ok := e.vars[n.Text]; ok {
			return v
		}
		if e.td.Content.names[n.Text] {
			return aval{text: true}
		}
		return aval{}
	case "GetAttribute":
		base := n.kid("Node")
		if b := base; b != nil && b.Kind == "Name" {
			if v, ok := e.vars[b.Text+"."+n.Text]; ok {
				return v
			}
		}
		return e.member(e.eval(base, d), constStr(n.Text))
	case "GetItem":
		bv := e.eval(n.kid("Node"), d)
		return e.member(bv, e.eval(n.kid("Arg"), d))
	case "GetSlice":
		bv := e.eval(n.kid("Node"), d)
		start, end, step := e.eval(n.kid("Start"), d), e.eval(n.kid("End"), d), e.eval(n.kid("Step"), d)
		if bv.isLst {
			return aval{computed: true, text: bv.text}
		}
		out := bv.mapStrs(func(s string) (string, bool) { return pySlice(s, start, end, step, n) })
		out.text = bv.text
		return out
	case "BinaryExpression":
		op := ""
		if o := n.kid("Operator"); o != nil {
			op = o.Text
		}
		l, r := e.eval(n.kid("Left"), d), e.eval(n.kid("Right"), d)
		switch op {
		case "+", "~":
			// + with a number is arithmetic (str + int raises); ~ always
			// concatenates.
			if op == "+" && (l.num || r.num) || l.num && r.num {
				return aval{num: true}
			}
			return cross(l, r, func(x, y string) (string, bool) { return x + y, true })
		case "%":
			if l.num {
				return aval{num: true}
			}
			args := r
			if r.isLst {
				return percentFormat(l, r.list)
			}
			return percentFormat(l, []aval{args})
		case "*":
			if l.known && r.num && r.known && len(l.strs) == 1 && len(r.strs) == 1 {
				k, err := strconv.Atoi(r.strs[0])
				if err == nil && k >= 0 && k*len(l.strs[0]) <= maxFolded {
					return aval{strs: []string{strings.Repeat(l.strs[0], k)}, known: true, computed: true}
				}
			}
			return aval{computed: l.known || r.known}
		case "-", "/", "//":
			return aval{num: true}
		}
		return aval{}
	case "List", "Tuple":
		out := aval{isLst: true}
		for i, it := range n.kids("Val") {
			if i >= maxListItems {
				return aval{}
			}
			out.list = append(out.list, e.eval(it, d))
		}
		return out
	case "FilteredExpression":
		v := e.eval(n.kid("Expression"), d)
		for _, f := range n.kids("Filters") {
			v = e.filter(v, f, d)
		}
		return v
	case "Call":
		return e.call(n, d)
	case "Output":
		v := e.eval(n.kid("Expression"), d)
		if n.kid("Condition") != nil {
			v = union(v, e.eval(n.kid("Alternative"), d))
		}
		return v
	}
	return aval{}
}

// member is base[key] or base.key.
func (e *evaluator) member(base, key aval) aval {
	if key.known && len(key.strs) == 1 {
		k := key.strs[0]
		switch {
		case base.isLst && key.num:
			i, err := strconv.Atoi(k)
			if err == nil {
				if i < 0 {
					i += len(base.list)
				}
				if i >= 0 && i < len(base.list) {
					return base.list[i]
				}
			}
			return aval{}
		case base.known && key.num:
			i, err := strconv.Atoi(k)
			return base.mapStrs(func(s string) (string, bool) {
				r := []rune(s)
				if err != nil {
					return "", false
				}
				if i < 0 {
					i += len(r)
				}
				if i < 0 || i >= len(r) {
					return "", false
				}
				return string(r[i]), true
			})
		case k == "content":
			return aval{text: true}
		case base.part && k == "text":
			return aval{text: true}
		case base.part:
			return aval{}
		}
	}
	if base.text && key.num {
		return aval{text: true}
	}
	return aval{}
}

// checkAccess reports attribute and item names that reach Python
// internals, and names built at render time that cannot be folded.
func (e *evaluator) checkAccess(n *jnode, key aval, base *jnode) {
	sb := e.td.Sandbox
	if b := base; b != nil && b.Kind == "Name" && sb.globals[b.Text] {
		e.r.add("GGUF-050", fmt.Sprintf("%s%s reaches the template globals", b.Text, accessText(n, key)))
	}
	switch {
	case key.known:
		for _, s := range key.strs {
			if strings.HasPrefix(s, "_") || sb.attrs[s] {
				e.r.add("GGUF-050", fmt.Sprintf("%s names %q", kindWord(n), s))
			}
		}
	case key.computed && !key.num:
		e.r.add("GGUF-050", fmt.Sprintf("%s whose name is built at render time and cannot be resolved", kindWord(n)))
	}
}

func kindWord(n *jnode) string {
	if n.Kind == "GetAttribute" {
		return "attribute access"
	}
	if n.Kind == "FilterCall" {
		return n.Text + "() filter"
	}
	return "item access"
}

func accessText(n *jnode, key aval) string {
	if key.known && len(key.strs) > 0 {
		if n.Kind == "GetAttribute" {
			return "." + key.strs[0]
		}
		return "[" + strconv.Quote(key.strs[0]) + "]"
	}
	return "[...]"
}

// filter applies one Jinja filter.
func (e *evaluator) filter(v aval, f *jnode, d int) aval {
	args := f.kids("Args")
	argv := func(i int) aval {
		if i < len(args) {
			return e.eval(args[i], d)
		}
		return aval{}
	}
	switch f.Text {
	case "join":
		sep := constStr("")
		if len(args) > 0 {
			sep = argv(0)
		}
		if v.isLst {
			return joinList(v.list, sep)
		}
		if v.known { // joining a string's characters gives it back
			return aval{strs: v.strs, known: true, text: v.text, computed: true}
		}
		return aval{text: v.text, computed: true}
	case "reverse":
		if v.isLst {
			out := aval{isLst: true, computed: true}
			for i := len(v.list) - 1; i >= 0; i-- {
				out.list = append(out.list, v.list[i])
			}
			return out
		}
		return v.mapStrs(func(s string) (string, bool) { return reverseRunes(s), true })
	case "lower":
		return v.mapStrs(func(s string) (string, bool) { return strings.ToLower(s), true })
	case "upper":
		return v.mapStrs(func(s string) (string, bool) { return strings.ToUpper(s), true })
	case "capitalize":
		return v.mapStrs(func(s string) (string, bool) { return capitalize(s), true })
	case "title":
		//lint:ignore SA1019 Python's str.title splits words the same way on the names templates use
		return v.mapStrs(func(s string) (string, bool) { return strings.Title(strings.ToLower(s)), true })
	case "trim", "striptags":
		return v.mapStrs(func(s string) (string, bool) { return strings.TrimSpace(s), true })
	case "replace":
		old, nw := argv(0), argv(1)
		out := cross(v, old, func(s, o string) (string, bool) { return s + "\x00" + o, true })
		out = cross(out, nw, func(so, n string) (string, bool) {
			s, o, _ := strings.Cut(so, "\x00")
			return strings.ReplaceAll(s, o, n), true
		})
		out.text = v.text
		return out
	case "format":
		return percentFormat(v, evalAll(e, args, d))
	case "string", "safe", "e", "escape", "forceescape":
		return v
	case "first", "last":
		if v.isLst && len(v.list) > 0 {
			if f.Text == "first" {
				return v.list[0]
			}
			return v.list[len(v.list)-1]
		}
		return v.mapStrs(func(s string) (string, bool) {
			r := []rune(s)
			if len(r) == 0 {
				return "", false
			}
			if f.Text == "first" {
				return string(r[0]), true
			}
			return string(r[len(r)-1]), true
		})
	case "list":
		if v.known && len(v.strs) == 1 && utf8.RuneCountInString(v.strs[0]) <= maxListItems {
			out := aval{isLst: true, computed: true}
			for _, r := range v.strs[0] {
				out.list = append(out.list, constStr(string(r)))
			}
			return out
		}
		return v
	case "default", "d":
		return union(v, argv(0))
	case "length", "count", "wordcount", "int", "float", "abs", "round":
		return aval{num: true}
	}
	return aval{text: v.text, computed: v.computed}
}

func evalAll(e *evaluator, ns []*jnode, d int) []aval {
	var out []aval
	for _, n := range ns {
		out = append(out, e.eval(n, d))
	}
	return out
}

// call folds a method call on a string or list, or a few globals.
func (e *evaluator) call(n *jnode, d int) aval {
	fn := n.kid("Func")
	args := evalAll(e, n.kids("Args"), d)
	arg := func(i int) aval {
		if i < len(args) {
			return args[i]
		}
		return aval{}
	}
	if fn == nil || fn.Kind != "GetAttribute" {
		if fn != nil && fn.Kind == "Name" && fn.Text == "range" {
			return aval{isLst: false}
		}
		return aval{}
	}
	obj := e.eval(fn.kid("Node"), d)
	switch fn.Text {
	case "format":
		return braceFormat(obj, args)
	case "replace":
		out := cross(obj, arg(0), func(s, o string) (string, bool) { return s + "\x00" + o, true })
		out = cross(out, arg(1), func(so, nw string) (string, bool) {
			s, o, _ := strings.Cut(so, "\x00")
			return strings.ReplaceAll(s, o, nw), true
		})
		out.text = obj.text
		return out
	case "join":
		if len(args) > 0 && args[0].isLst {
			return joinList(args[0].list, obj)
		}
		return aval{computed: true}
	case "lower", "casefold":
		return obj.mapStrs(func(s string) (string, bool) { return strings.ToLower(s), true })
	case "upper":
		return obj.mapStrs(func(s string) (string, bool) { return strings.ToUpper(s), true })
	case "capitalize":
		return obj.mapStrs(func(s string) (string, bool) { return capitalize(s), true })
	case "swapcase":
		return obj.mapStrs(func(s string) (string, bool) { return swapCase(s), true })
	case "strip", "lstrip", "rstrip":
		cut := " \t\n\r\v\f"
		if len(args) > 0 {
			if !args[0].known || len(args[0].strs) != 1 {
				return aval{text: obj.text, computed: true}
			}
			cut = args[0].strs[0]
		}
		return obj.mapStrs(func(s string) (string, bool) {
			switch fn.Text {
			case "lstrip":
				return strings.TrimLeft(s, cut), true
			case "rstrip":
				return strings.TrimRight(s, cut), true
			}
			return strings.Trim(s, cut), true
		})
	case "split", "rsplit":
		if obj.known && len(obj.strs) == 1 && (len(args) == 0 || args[0].known && len(args[0].strs) == 1) {
			var parts []string
			if len(args) == 0 {
				parts = strings.Fields(obj.strs[0])
			} else if args[0].strs[0] != "" {
				parts = strings.Split(obj.strs[0], args[0].strs[0])
			}
			if len(parts) <= maxListItems {
				out := aval{isLst: true, computed: true}
				for _, p := range parts {
					out.list = append(out.list, constStr(p))
				}
				return out
			}
		}
		return aval{text: obj.text, computed: true}
	}
	return aval{text: obj.text && e.td.Content.tests[fn.Text]}
}

func joinList(items []aval, sep aval) aval {
	out := constStr("")
	text := false
	for i, it := range items {
		text = text || it.text
		if i > 0 {
			out = cross(out, sep, func(x, y string) (string, bool) { return x + y, true })
		}
		out = cross(out, it, func(x, y string) (string, bool) { return x + y, true })
	}
	out.text = text
	out.computed = true
	return out
}

// percentFormat folds 'fmt' % args for %s, %r, %c, %d and %%.
func percentFormat(f aval, args []aval) aval {
	out := aval{computed: true}
	if !f.known || len(f.strs) != 1 {
		return out
	}
	cur := constStr("")
	s := f.strs[0]
	ai := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 >= len(s) {
			cur = cross(cur, constStr(string(s[i])), func(x, y string) (string, bool) { return x + y, true })
			continue
		}
		i++
		switch s[i] {
		case '%':
			cur = cross(cur, constStr("%"), func(x, y string) (string, bool) { return x + y, true })
		case 's', 'r', 'd', 'i', 'c':
			if ai >= len(args) {
				return out
			}
			a := args[ai]
			ai++
			if s[i] == 'c' {
				a = a.mapStrs(func(x string) (string, bool) {
					n, err := strconv.Atoi(x)
					if err != nil || n < 0 || n > utf8.MaxRune {
						return x, len([]rune(x)) == 1
					}
					return string(rune(n)), true
				})
			}
			cur = cross(cur, a, func(x, y string) (string, bool) { return x + y, true })
		default:
			return out
		}
		if !cur.known {
			return out
		}
	}
	cur.computed = true
	return cur
}

// braceFormat folds 'fmt'.format(args) for {} and {N}.
func braceFormat(f aval, args []aval) aval {
	out := aval{computed: true}
	if !f.known || len(f.strs) != 1 {
		return out
	}
	s := f.strs[0]
	cur := constStr("")
	auto := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{', c == '}' && i+1 < len(s) && s[i+1] == '}':
			cur = cross(cur, constStr(string(c)), func(x, y string) (string, bool) { return x + y, true })
			i++
		case c == '{':
			j := strings.IndexByte(s[i:], '}')
			if j < 0 {
				return out
			}
			field := s[i+1 : i+j]
			idx := auto
			if field == "" {
				auto++
			} else if n, err := strconv.Atoi(field); err == nil {
				idx = n
			} else {
				return out
			}
			if idx >= len(args) {
				return out
			}
			cur = cross(cur, args[idx], func(x, y string) (string, bool) { return x + y, true })
			i += j
		default:
			cur = cross(cur, constStr(string(c)), func(x, y string) (string, bool) { return x + y, true })
		}
		if !cur.known {
			return out
		}
	}
	cur.computed = true
	return cur
}

// pySlice slices s as Python does, with constant bounds.
func pySlice(s string, start, end, step aval, n *jnode) (string, bool) {
	r := []rune(s)
	num := func(v aval, node string, def int) (int, bool) {
		if n.kid(node) == nil {
			return def, true
		}
		if !v.known || !v.num || len(v.strs) != 1 {
			return 0, false
		}
		k, err := strconv.Atoi(v.strs[0])
		return k, err == nil
	}
	st, ok := num(step, "Step", 1)
	if !ok || st == 0 {
		return "", false
	}
	L := len(r)
	norm := func(k int, lo, hi int) int {
		if k < 0 {
			k += L
		}
		return max(lo, min(k, hi))
	}
	var b strings.Builder
	if st > 0 {
		a, ok1 := num(start, "Start", 0)
		z, ok2 := num(end, "End", L)
		if !ok1 || !ok2 {
			return "", false
		}
		for i := norm(a, 0, L); i < norm(z, 0, L); i += st {
			b.WriteRune(r[i])
		}
	} else {
		a, ok1 := num(start, "Start", L-1)
		z, ok2 := num(end, "End", -L-1)
		if !ok1 || !ok2 {
			return "", false
		}
		lo := -1
		if n.kid("End") != nil {
			lo = norm(z, -1, L-1)
		}
		for i := norm(a, -1, L-1); i > lo; i += st {
			b.WriteRune(r[i])
		}
	}
	return b.String(), true
}

func reverseRunes(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return strings.ToUpper(string(r)) + strings.ToLower(s[n:])
}

func swapCase(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case strings.ToUpper(string(r)) != string(r):
			b.WriteString(strings.ToUpper(string(r)))
		default:
			b.WriteString(strings.ToLower(string(r)))
		}
	}
	return b.String()
}

// checkFilterAccess reports attribute names given to filters that read
// attributes by name: attr(name), map(attribute=name), selectattr(name),
// sort(attribute=name), ...
func (e *evaluator) checkFilterAccess(f *jnode) {
	if !e.td.Sandbox.attrFilters[f.Text] {
		return
	}
	args, kw := f.kids("Args"), f.kids("Kwargs")
	cands := append(append([]*jnode{}, args...), kw...)
	if f.Text == "map" {
		// map('lower') names a filter; map(attribute='x') an attribute.
		cands = nil
		for _, k := range kw {
			if k.Text == "attribute" {
				cands = append(cands, k)
			}
		}
	}
	for _, a := range cands {
		k := e.eval(a, 0)
		switch {
		case k.known:
			for _, s := range k.strs {
				if strings.HasPrefix(s, "_") || e.td.Sandbox.attrs[s] {
					e.r.add("GGUF-050", fmt.Sprintf("%s(%q)", f.Text, s))
				}
			}
		case f.Text == "attr" || k.computed:
			e.r.add("GGUF-050", f.Text+"() with a name built at render time")
		}
	}
}

// walkLoops calls fn for n and every descendant, saying whether the node
// lies inside a for loop's body.
func walkLoops(n *jnode, inLoop bool, fn func(*jnode, bool)) {
	if n == nil {
		return
	}
	fn(n, inLoop)
	inner := inLoop || n.Kind == "ForControlStructure"
	for _, f := range n.Fields {
		for _, k := range f.Nodes {
			walkLoops(k, inner, fn)
		}
	}
}

// mentions reports whether expression n reads variable name ("x" or
// "ns.attr").
func mentions(n *jnode, name string) bool {
	found := false
	n.each(func(x *jnode) {
		if targetName(x) == name {
			found = true
		}
	})
	return found
}
