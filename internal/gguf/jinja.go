package gguf

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// Bounds of the Jinja AST conversion.
const (
	maxNodes       = 200_000 // AST nodes converted per template
	maxNodeDepth   = 256     // Go-structure depth walked
	maxBracketNest = 64      // bracket nesting accepted before parsing
)

// jnode is a parser-independent view of one Jinja AST node: its kind (the
// gonja Go type name, such as "GetAttribute" or "IfControlStructure"), its
// text (literal value, name, attribute, operator or filter name) and its
// children grouped by the field that holds them, in field order.
type jnode struct {
	Kind   string
	Text   string
	Fields []jfield
}

type jfield struct {
	Name  string
	Nodes []*jnode
}

// kids returns the children under field name.
func (n *jnode) kids(name string) []*jnode {
	for _, f := range n.Fields {
		if f.Name == name {
			return f.Nodes
		}
	}
	return nil
}

func (n *jnode) kid(name string) *jnode {
	if k := n.kids(name); len(k) > 0 {
		return k[0]
	}
	return nil
}

// each calls fn for n and every descendant, depth first.
func (n *jnode) each(fn func(*jnode)) {
	if n == nil {
		return
	}
	stack := []*jnode{n}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		fn(x)
		for i := len(x.Fields) - 1; i >= 0; i-- {
			for j := len(x.Fields[i].Nodes) - 1; j >= 0; j-- {
				stack = append(stack, x.Fields[i].Nodes[j])
			}
		}
	}
}

// denyLoader refuses every template load: a chat template is analysed
// alone and never reads files.
type denyLoader struct{}

var errNoLoad = errors.New("loading other templates is disabled")

func (denyLoader) Read(string) (io.Reader, error)         { return nil, errNoLoad }
func (denyLoader) Resolve(string) (string, error)         { return "", errNoLoad }
func (denyLoader) Inherit(string) (loaders.Loader, error) { return nil, errNoLoad }

// bracketDepth returns the deepest nesting of (, [ and { in s.
func bracketDepth(s string) int {
	depth, worst := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(', '[', '{':
			depth++
			if depth > worst {
				worst = depth
			}
		case ')', ']', '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return worst
}

// parseJinja parses tmpl into a jnode tree with gonja. The template is only
// parsed, never rendered.
func parseJinja(tmpl string) (root *jnode, err error) {
	if d := bracketDepth(tmpl); d > maxBracketNest {
		return nil, fmt.Errorf("brackets nest %d deep, more than the %d the analyser accepts", d, maxBracketNest)
	}
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("the Jinja parser failed: %v", r)
		}
	}()
	cfg := config.New()
	p := parser.NewParser("chat_template", tokens.LexAll(tmpl, cfg), cfg, denyLoader{}, builtins.ControlStructures)
	t, err := p.Parse()
	if err != nil {
		return nil, err
	}
	c := converter{seen: map[uintptr]bool{}}
	root = c.convert(reflect.ValueOf(t), 0)
	if c.count > maxNodes {
		return nil, fmt.Errorf("the template has more than %d syntax nodes", maxNodes)
	}
	return root, nil
}

type converter struct {
	seen  map[uintptr]bool
	count int
}

var tokenType = reflect.TypeOf((*tokens.Token)(nil))

// convert turns a gonja node (a pointer to a struct) into a jnode using
// reflection only to read fields, so unexported fields of control
// structures are covered and nothing is executed.
func (c *converter) convert(v reflect.Value, depth int) *jnode {
	for v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if depth > maxNodeDepth || c.count > maxNodes {
		return nil
	}
	var s reflect.Value
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || v.Type() == tokenType {
			return nil
		}
		if c.seen[v.Pointer()] {
			return nil
		}
		c.seen[v.Pointer()] = true
		s = v.Elem()
	case reflect.Struct:
		s = v
	default:
		return nil
	}
	if s.Kind() != reflect.Struct || s.Type().Name() == "Trim" {
		return nil
	}
	c.count++
	n := &jnode{Kind: s.Type().Name()}
	n.Text = nodeText(n.Kind, s)
	for i := 0; i < s.NumField(); i++ {
		sf := s.Type().Field(i)
		if sf.Name == "Parent" { // Template.Parent points back up
			continue
		}
		kids := c.children(s.Field(i), depth+1)
		if sf.Anonymous && len(kids) == 1 { // embedded *nodes.Macro
			n.Fields = append(n.Fields, kids[0].Fields...)
			if n.Text == "" {
				n.Text = kids[0].Text
			}
			continue
		}
		if len(kids) > 0 {
			n.Fields = append(n.Fields, jfield{Name: sf.Name, Nodes: kids})
		}
	}
	return n
}

func (c *converter) children(f reflect.Value, depth int) []*jnode {
	switch f.Kind() {
	case reflect.Interface, reflect.Pointer:
		if k := c.convert(f, depth); k != nil {
			return []*jnode{k}
		}
	case reflect.Struct:
		if f.Type().Name() == "Trim" {
			return nil
		}
		if k := c.convert(f, depth); k != nil && len(k.Fields) > 0 {
			return []*jnode{k}
		}
	case reflect.Slice, reflect.Array:
		var out []*jnode
		for i := 0; i < f.Len() && c.count <= maxNodes; i++ {
			out = append(out, c.children(f.Index(i), depth)...)
		}
		return out
	case reflect.Map:
		if f.Type().Key().Kind() != reflect.String {
			return nil
		}
		keys := f.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		var out []*jnode
		for _, k := range keys {
			// Keyword arguments keep their names: a "Kwarg" node whose
			// text is the key and whose Value is the expression.
			for _, v := range c.children(f.MapIndex(k), depth) {
				out = append(out, &jnode{Kind: "Kwarg", Text: k.String(), Fields: []jfield{{Name: "Value", Nodes: []*jnode{v}}}})
			}
		}
		return out
	}
	return nil
}

// nodeText extracts the text that matters for each node kind.
func nodeText(kind string, s reflect.Value) string {
	str := func(name string) string {
		f := s.FieldByName(name)
		if f.IsValid() && f.Kind() == reflect.String {
			return f.String()
		}
		return ""
	}
	tok := func(name string) string {
		f := s.FieldByName(name)
		if f.IsValid() && f.Type() == tokenType && !f.IsNil() {
			return f.Elem().FieldByName("Val").String()
		}
		return ""
	}
	switch kind {
	case "Integer":
		if f := s.FieldByName("Val"); f.IsValid() && f.CanInt() {
			return strconv.FormatInt(f.Int(), 10)
		}
	case "Float":
		if f := s.FieldByName("Val"); f.IsValid() && f.CanFloat() {
			return strconv.FormatFloat(f.Float(), 'g', -1, 64)
		}
	case "UnaryExpression":
		if f := s.FieldByName("Negative"); f.IsValid() && f.Kind() == reflect.Bool && f.Bool() {
			return "-"
		}
	case "ForControlStructure":
		return str("Key") + "," + str("Value")
	case "Data":
		return tok("Data")
	case "String":
		return str("Val")
	case "Name":
		return tok("Name")
	case "GetAttribute":
		return str("Attribute")
	case "FilterCall", "TestCall", "Macro":
		return str("Name")
	case "VariablePart":
		return str("S")
	case "BinOperator":
		return tok("Token")
	case "ExtendsControlStructure":
		return str("filename")
	case "Comment":
		return str("Text")
	}
	return ""
}

// String renders the tree for tests and debugging.
func (n *jnode) String() string {
	var b strings.Builder
	var walk func(x *jnode, indent string)
	walk = func(x *jnode, indent string) {
		fmt.Fprintf(&b, "%s%s %q\n", indent, x.Kind, x.Text)
		for _, f := range x.Fields {
			fmt.Fprintf(&b, "%s .%s\n", indent, f.Name)
			for _, k := range f.Nodes {
				walk(k, indent+"  ")
			}
		}
	}
	walk(n, "")
	return b.String()
}

var reGonjaPos = regexp.MustCompile(`Line: (\d+) Col: (\d+)`)

// maxRepairs bounds the tags replaced to get a template through gonja.
const maxRepairs = 16

// parseTolerant parses tmpl with gonja. gonja lacks a few constructs
// Jinja2 accepts (a conditional expression inside parentheses, for one),
// and a parse failure alone says nothing about a template: when gonja
// rejects a tag, that tag is replaced by a neutral one of the same kind
// ({{ x }}, {% if x %}, {% for a in x %}, {% set a = x %}) and parsing is
// retried. The original text of replaced tags is returned for a
// token-level check; the error is for a template that still fails.
func parseTolerant(tmpl string) (*jnode, []string, error) {
	var replaced []string
	for try := 0; ; try++ {
		root, err := parseJinja(tmpl)
		if err == nil {
			return root, replaced, nil
		}
		if try >= maxRepairs {
			return nil, replaced, err
		}
		m := reGonjaPos.FindStringSubmatch(err.Error())
		if m == nil {
			return nil, replaced, err
		}
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		start, end := enclosingTag(tmpl, lineColOffset(tmpl, line, col))
		if start < 0 {
			return nil, replaced, err
		}
		orig := tmpl[start:end]
		repl := neutralTag(orig)
		if repl == "" || repl == orig {
			return nil, replaced, err
		}
		replaced = append(replaced, orig)
		tmpl = tmpl[:start] + repl + tmpl[end:]
	}
}

// lineColOffset turns gonja's 1-based line and column into a byte offset.
func lineColOffset(s string, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(s[off:], '\n')
		if i < 0 {
			return len(s)
		}
		off += i + 1
	}
	return min(off+max(col-1, 0), len(s))
}

// enclosingTag finds the {{ }} or {% %} tag around off.
func enclosingTag(s string, off int) (int, int) {
	if off > len(s) {
		off = len(s)
	}
	for i := min(off, len(s)-2); i >= 0; i-- {
		if s[i] != '{' || i+1 >= len(s) || (s[i+1] != '{' && s[i+1] != '%') {
			continue
		}
		closer := "}}"
		if s[i+1] == '%' {
			closer = "%}"
		}
		if j := strings.Index(s[i+2:], closer); j >= 0 && i+2+j+2 >= off {
			return i, i + 2 + j + 2
		}
		return -1, -1
	}
	return -1, -1
}

var (
	reTagFor = regexp.MustCompile(`^\s*for\s+([A-Za-z_][\w\s,]*?)\s+in\b`)
	reTagSet = regexp.MustCompile(`^\s*set\s+([A-Za-z_][\w.]*)\s*=`)
)

// neutralTag returns a tag of the same kind that gonja parses, keeping
// white-space control and the names a for or set binds.
func neutralTag(tag string) string {
	open, closeTag := tag[:2], tag[len(tag)-2:]
	body := tag[2 : len(tag)-2]
	lead, trail := "", ""
	if strings.HasPrefix(body, "-") || strings.HasPrefix(body, "+") {
		lead, body = body[:1], body[1:]
	}
	if strings.HasSuffix(body, "-") || strings.HasSuffix(body, "+") {
		trail, body = body[len(body)-1:], body[:len(body)-1]
	}
	wrap := func(inner string) string { return open + lead + " " + inner + " " + trail + closeTag }
	if open == "{{" {
		return wrap("llmfence_repaired")
	}
	word := strings.Fields(body)
	if len(word) == 0 {
		return ""
	}
	switch word[0] {
	case "if", "elif":
		return wrap(word[0] + " llmfence_repaired")
	case "for":
		if m := reTagFor.FindStringSubmatch(body); m != nil {
			return wrap("for " + m[1] + " in llmfence_repaired")
		}
	case "set":
		if m := reTagSet.FindStringSubmatch(body); m != nil {
			return wrap("set " + m[1] + " = llmfence_repaired")
		}
	}
	return ""
}
