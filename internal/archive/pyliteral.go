package archive

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/unicode/runenames"
)

// A Python literal evaluator that accepts what ast.literal_eval accepts,
// for the .npy header NumPy reads with it: strings with every prefix,
// escape (\x, \u, \U, \N{...}, octal, line continuation) and implicit
// concatenation; bytes; integers in every base with underscores (and the
// "L" suffix of Python 2, which NumPy filters out of version 1 and 2
// headers); floats; complex sums; True, False, None, ...; tuples with or
// without parentheses, lists, sets, set(), dicts (the last of repeated keys
// wins); one unary sign on a number; comments and line continuations.
// Anything else is an error, as literal_eval raises. Input size and nesting
// are bounded by the caller and pyMaxDepth.

// pyKind is the type of a Python literal value.
type pyKind uint8

const (
	pyNone pyKind = iota
	pyBool
	pyInt
	pyFloat
	pyComplex
	pyStr
	pyBytes
	pyEllipsis
	pyTupleK
	pyListK
	pySetK
	pyDictK
)

// pyVal is one evaluated literal.
type pyVal struct {
	kind  pyKind
	b     bool
	i     *big.Int
	f     float64
	s     string // str (UTF-8, lone surrogates as WTF-8) or bytes
	items []pyVal
	keys  []pyVal // dict: keys, in insertion order, items holds the values
}

const pyMaxDepth = 64

// pyToken kinds.
const (
	tEOF = iota
	tNewline
	tOp
	tName
	tNumber
	tString
)

type pyToken struct {
	kind int
	text string // operator, name or number text
	str  pyVal  // tString: the decoded literal (str or bytes), f-string flagged by kind pyNone
	fstr bool
}

type pyLexer struct {
	s     string
	i     int
	depth int // bracket depth: newlines inside brackets are white space
	toks  []pyToken
}

func (l *pyLexer) errf(format string, a ...any) error {
	return fmt.Errorf("at character %d: %s", l.i, fmt.Sprintf(format, a...))
}

// lex splits s into tokens the way Python's tokenizer does for the subset
// literal_eval can accept.
func pyLex(s string) ([]pyToken, error) {
	l := &pyLexer{s: s}
	for {
		if err := l.skipSpace(); err != nil {
			return nil, err
		}
		if l.i >= len(l.s) {
			l.toks = append(l.toks, pyToken{kind: tEOF})
			return l.toks, nil
		}
		c := l.s[l.i]
		switch {
		case c == '\n' || c == '\r':
			l.i++
			if c == '\r' && l.i < len(l.s) && l.s[l.i] == '\n' {
				l.i++
			}
			if l.depth == 0 {
				l.toks = append(l.toks, pyToken{kind: tNewline})
			}
		case c >= '0' && c <= '9' || c == '.' && l.i+1 < len(l.s) && l.s[l.i+1] >= '0' && l.s[l.i+1] <= '9':
			l.number()
		case c == '.' && strings.HasPrefix(l.s[l.i:], "..."):
			l.toks = append(l.toks, pyToken{kind: tOp, text: "..."})
			l.i += 3
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80:
			if err := l.nameOrString(); err != nil {
				return nil, err
			}
		case c == '\'' || c == '"':
			if err := l.str(""); err != nil {
				return nil, err
			}
		case strings.IndexByte("([{", c) >= 0:
			l.depth++
			l.toks = append(l.toks, pyToken{kind: tOp, text: string(c)})
			l.i++
		case strings.IndexByte(")]}", c) >= 0:
			if l.depth > 0 {
				l.depth--
			}
			l.toks = append(l.toks, pyToken{kind: tOp, text: string(c)})
			l.i++
		case strings.IndexByte(",:+-*", c) >= 0:
			if c == '*' && strings.HasPrefix(l.s[l.i:], "**") {
				l.toks = append(l.toks, pyToken{kind: tOp, text: "**"})
				l.i += 2
				continue
			}
			l.toks = append(l.toks, pyToken{kind: tOp, text: string(c)})
			l.i++
		default:
			return nil, l.errf("unexpected %q", c)
		}
	}
}

// skipSpace skips blanks, comments and backslash continuations.
func (l *pyLexer) skipSpace() error {
	for l.i < len(l.s) {
		switch c := l.s[l.i]; {
		case c == ' ' || c == '\t' || c == '\f':
			l.i++
		case c == '#':
			for l.i < len(l.s) && l.s[l.i] != '\n' && l.s[l.i] != '\r' {
				l.i++
			}
		case c == '\\':
			if l.i+1 < len(l.s) && l.s[l.i+1] == '\n' {
				l.i += 2
			} else if strings.HasPrefix(l.s[l.i+1:], "\r\n") {
				l.i += 3
			} else {
				return l.errf("unexpected character after line continuation")
			}
		case (c == '\n' || c == '\r') && l.depth > 0:
			l.i++
		default:
			return nil
		}
	}
	return nil
}

func (l *pyLexer) number() {
	j := l.i
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' || c == '_' }
	if strings.HasPrefix(strings.ToLower(l.s[j:]), "0x") || strings.HasPrefix(strings.ToLower(l.s[j:]), "0o") || strings.HasPrefix(strings.ToLower(l.s[j:]), "0b") {
		j += 2
		for j < len(l.s) && (isDigit(l.s[j]) || l.s[j]|0x20 >= 'a' && l.s[j]|0x20 <= 'f') {
			j++
		}
	} else {
		for j < len(l.s) && isDigit(l.s[j]) {
			j++
		}
		if j < len(l.s) && l.s[j] == '.' {
			j++
			for j < len(l.s) && isDigit(l.s[j]) {
				j++
			}
		}
		if j < len(l.s) && l.s[j]|0x20 == 'e' {
			k := j + 1
			if k < len(l.s) && (l.s[k] == '+' || l.s[k] == '-') {
				k++
			}
			if k < len(l.s) && l.s[k] >= '0' && l.s[k] <= '9' {
				j = k
				for j < len(l.s) && isDigit(l.s[j]) {
					j++
				}
			}
		}
		if j < len(l.s) && l.s[j]|0x20 == 'j' {
			j++
		}
	}
	l.toks = append(l.toks, pyToken{kind: tNumber, text: l.s[l.i:j]})
	l.i = j
}

func (l *pyLexer) nameOrString() error {
	j := l.i
	for j < len(l.s) {
		c := l.s[j]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			j++
			continue
		}
		if c >= 0x80 {
			r, n := utf8.DecodeRuneInString(l.s[j:])
			if r == utf8.RuneError {
				return l.errf("invalid character")
			}
			j += n
			continue
		}
		break
	}
	word := l.s[l.i:j]
	if j < len(l.s) && (l.s[j] == '\'' || l.s[j] == '"') {
		switch p := strings.ToLower(word); p {
		case "r", "u", "b", "br", "rb", "f", "fr", "rf":
			l.i = j
			return l.str(p)
		}
	}
	l.toks = append(l.toks, pyToken{kind: tName, text: word})
	l.i = j
	return nil
}

// str reads one string literal with the given (lower-case) prefix.
func (l *pyLexer) str(prefix string) error {
	raw := strings.Contains(prefix, "r")
	isBytes := strings.Contains(prefix, "b")
	q := l.s[l.i]
	quote := string(q)
	if strings.HasPrefix(l.s[l.i:], strings.Repeat(quote, 3)) {
		quote = strings.Repeat(quote, 3)
	}
	l.i += len(quote)
	var body strings.Builder
	for {
		if l.i >= len(l.s) {
			return l.errf("unterminated string literal")
		}
		if strings.HasPrefix(l.s[l.i:], quote) {
			l.i += len(quote)
			break
		}
		c := l.s[l.i]
		if (c == '\n' || c == '\r') && len(quote) == 1 {
			return l.errf("unterminated string literal")
		}
		if c == '\\' && l.i+1 < len(l.s) {
			body.WriteString(l.s[l.i : l.i+2])
			l.i += 2
			continue
		}
		body.WriteByte(c)
		l.i++
	}
	text := body.String()
	tok := pyToken{kind: tString, fstr: strings.Contains(prefix, "f")}
	if isBytes {
		for i := 0; i < len(text); i++ {
			if text[i] >= 0x80 {
				return l.errf("bytes can only contain ASCII literal characters")
			}
		}
	}
	if raw {
		tok.str = pyVal{kind: pyStr, s: text}
	} else {
		v, err := pyUnescape(text, isBytes)
		if err != nil {
			return l.errf("%v", err)
		}
		tok.str = pyVal{kind: pyStr, s: v}
	}
	if isBytes {
		tok.str.kind = pyBytes
	}
	l.toks = append(l.toks, tok)
	return nil
}

// pyUnescape undoes the escapes of a non-raw string or bytes literal.
func pyUnescape(s string, isBytes bool) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch c = s[i]; c {
		case '\n':
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
		case '\\', '\'', '"':
			b.WriteByte(c)
		case 'a':
			b.WriteByte(7)
		case 'b':
			b.WriteByte(8)
		case 'f':
			b.WriteByte(12)
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte(11)
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for k := 0; k < 2 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; k++ {
				i++
				v = v*8 + int(s[i]-'0')
			}
			if isBytes {
				b.WriteByte(byte(v))
			} else {
				b.WriteRune(rune(v))
			}
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
			if isBytes && c != 'x' {
				b.WriteByte('\\')
				b.WriteByte(c)
				continue
			}
			if i+1+n > len(s) {
				return "", fmt.Errorf(`truncated \%c escape`, c)
			}
			v, err := strconv.ParseUint(s[i+1:i+1+n], 16, 32)
			if err != nil || strings.ContainsAny(s[i+1:i+1+n], "+-_") {
				return "", fmt.Errorf(`truncated \%c escape`, c)
			}
			i += n
			switch {
			case isBytes:
				b.WriteByte(byte(v))
			case v > utf8.MaxRune:
				return "", fmt.Errorf(`illegal Unicode character in \U escape`)
			default:
				writeWTF8(&b, rune(v))
			}
		case 'N':
			if isBytes {
				b.WriteString(`\N`)
				continue
			}
			end := strings.IndexByte(s[i:], '}')
			if i+1 >= len(s) || s[i+1] != '{' || end < 0 {
				return "", errors.New(`malformed \N character escape`)
			}
			r, ok := runeNamed(s[i+2 : i+end])
			if !ok {
				return "", fmt.Errorf(`unknown Unicode character name %q`, s[i+2:i+end])
			}
			b.WriteRune(r)
			i += end
		default:
			b.WriteByte('\\')
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// writeWTF8 writes r, keeping lone surrogates distinct (as Python's str
// does) rather than replacing them.
func writeWTF8(b *strings.Builder, r rune) {
	if r >= 0xD800 && r <= 0xDFFF {
		b.WriteByte(byte(0xE0 | r>>12))
		b.WriteByte(byte(0x80 | (r>>6)&0x3F))
		b.WriteByte(byte(0x80 | r&0x3F))
		return
	}
	b.WriteRune(r)
}

// runeNamed finds a character by its Unicode name (\N{...}), as Python
// does: case-insensitive.
func runeNamed(name string) (rune, bool) {
	want := strings.ToUpper(strings.TrimSpace(name))
	if want == "" || len(want) > 100 {
		return 0, false
	}
	r, ok := runeNames()[want]
	return r, ok
}

// runeNames is the reverse of runenames.Name, built the first time a
// header uses \N{...} and never changed afterwards.
var runeNames = sync.OnceValue(func() map[string]rune {
	m := make(map[string]rune, 1<<17)
	for r := rune(0); r <= 0x3FFFF; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		if n := runenames.Name(r); n != "" && n[0] != '<' {
			if _, dup := m[n]; !dup {
				m[n] = r
			}
		}
	}
	return m
})

// pyParser parses tokens into values, as literal_eval would evaluate them.
type pyParser struct {
	toks []pyToken
	i    int
}

func (p *pyParser) peek() pyToken { return p.toks[p.i] }

func (p *pyParser) isOp(s string) bool {
	t := p.toks[p.i]
	return t.kind == tOp && t.text == s
}

// pyEval evaluates s as ast.literal_eval(s) would; filterLongs first
// drops Python 2 "L" suffixes as NumPy does for old headers.
func pyEval(s string, filterLongs bool) (pyVal, error) {
	s = strings.TrimLeft(s, " \t")
	toks, err := pyLex(s)
	if err != nil {
		return pyVal{}, err
	}
	if filterLongs {
		toks = pyFilterLongs(toks)
	}
	p := &pyParser{toks: toks}
	for p.peek().kind == tNewline {
		p.i++
	}
	v, err := p.exprList(0, true)
	if err != nil {
		return pyVal{}, err
	}
	for p.peek().kind == tNewline {
		p.i++
	}
	if p.peek().kind != tEOF {
		return pyVal{}, fmt.Errorf("unexpected %q after the literal", p.peek().text)
	}
	return v, nil
}

// exprList parses one expression or a bare tuple of them (top level and
// inside parentheses).
func (p *pyParser) exprList(depth int, top bool) (pyVal, error) {
	first, err := p.expr(depth)
	if err != nil {
		return pyVal{}, err
	}
	if !p.isOp(",") {
		return first, nil
	}
	items := []pyVal{first}
	for p.isOp(",") {
		p.i++
		if t := p.peek(); t.kind == tEOF || t.kind == tNewline || p.isOp(")") {
			break
		}
		v, err := p.expr(depth)
		if err != nil {
			return pyVal{}, err
		}
		items = append(items, v)
	}
	return pyVal{kind: pyTupleK, items: items}, nil
}

// expr: a signed number, a complex sum, or an atom.
func (p *pyParser) expr(depth int) (pyVal, error) {
	if depth > pyMaxDepth {
		return pyVal{}, errors.New("nested too deeply")
	}
	left, signed, err := p.signed(depth)
	if err != nil {
		return pyVal{}, err
	}
	if p.isOp("+") || p.isOp("-") {
		p.i++
		right, err := p.atom(depth)
		if err != nil {
			return pyVal{}, err
		}
		if !(left.kind == pyInt || left.kind == pyFloat) || right.kind != pyComplex || !right.numeric() {
			return pyVal{}, errors.New("malformed node or string: only complex numbers may be added")
		}
		_ = signed
		return pyVal{kind: pyComplex}, nil
	}
	return left, nil
}

func (v pyVal) numeric() bool { return v.kind == pyInt || v.kind == pyFloat || v.kind == pyComplex }

// signed is an atom with at most one unary sign, which only numbers take.
func (p *pyParser) signed(depth int) (pyVal, bool, error) {
	if p.isOp("+") || p.isOp("-") {
		neg := p.isOp("-")
		p.i++
		v, err := p.atom(depth)
		if err != nil {
			return pyVal{}, false, err
		}
		if !v.numeric() || v.kind == pyBool {
			return pyVal{}, false, errors.New("malformed node or string: a sign on something not a number")
		}
		if neg && v.kind == pyInt {
			v.i = new(big.Int).Neg(v.i)
		}
		if neg && v.kind == pyFloat {
			v.f = -v.f
		}
		return v, true, nil
	}
	v, err := p.atom(depth)
	return v, false, err
}

func (p *pyParser) atom(depth int) (pyVal, error) {
	t := p.peek()
	switch t.kind {
	case tString:
		out := t.str
		if t.fstr {
			return pyVal{}, errors.New("malformed node or string: f-string")
		}
		p.i++
		for p.peek().kind == tString {
			n := p.peek()
			if n.fstr {
				return pyVal{}, errors.New("malformed node or string: f-string")
			}
			if (n.str.kind == pyBytes) != (out.kind == pyBytes) {
				return pyVal{}, errors.New("cannot mix bytes and nonbytes literals")
			}
			out.s += n.str.s
			p.i++
		}
		return out, nil
	case tNumber:
		p.i++
		return pyNumber(t.text)
	case tName:
		p.i++
		switch t.text {
		case "True":
			return pyVal{kind: pyBool, b: true}, nil
		case "False":
			return pyVal{kind: pyBool}, nil
		case "None":
			return pyVal{kind: pyNone}, nil
		case "set":
			if p.isOp("(") && p.toks[p.i+1].kind == tOp && p.toks[p.i+1].text == ")" {
				p.i += 2
				return pyVal{kind: pySetK}, nil
			}
		}
		return pyVal{}, fmt.Errorf("malformed node or string: name %q", clip(t.text))
	case tOp:
		switch t.text {
		case "...":
			p.i++
			return pyVal{kind: pyEllipsis}, nil
		case "(":
			p.i++
			if p.isOp(")") {
				p.i++
				return pyVal{kind: pyTupleK}, nil
			}
			v, err := p.exprList(depth+1, false)
			if err != nil {
				return pyVal{}, err
			}
			if !p.isOp(")") {
				return pyVal{}, errors.New("expected ')'")
			}
			p.i++
			return v, nil
		case "[":
			p.i++
			items, err := p.items(depth, "]")
			if err != nil {
				return pyVal{}, err
			}
			return pyVal{kind: pyListK, items: items}, nil
		case "{":
			p.i++
			return p.dictOrSet(depth)
		}
	}
	return pyVal{}, fmt.Errorf("unexpected %q", t.text)
}

// items parses comma-separated expressions up to closer.
func (p *pyParser) items(depth int, closer string) ([]pyVal, error) {
	var out []pyVal
	for !p.isOp(closer) {
		v, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if p.isOp(",") {
			p.i++
			continue
		}
		if !p.isOp(closer) {
			return nil, fmt.Errorf("expected ',' or %q", closer)
		}
	}
	p.i++
	return out, nil
}

func (p *pyParser) dictOrSet(depth int) (pyVal, error) {
	if p.isOp("}") {
		p.i++
		return pyVal{kind: pyDictK}, nil
	}
	if p.isOp("**") {
		return pyVal{}, errors.New("malformed node or string: dict unpacking")
	}
	first, err := p.expr(depth + 1)
	if err != nil {
		return pyVal{}, err
	}
	if !p.isOp(":") {
		// a set
		items := []pyVal{first}
		for p.isOp(",") {
			p.i++
			if p.isOp("}") {
				break
			}
			v, err := p.expr(depth + 1)
			if err != nil {
				return pyVal{}, err
			}
			items = append(items, v)
		}
		if !p.isOp("}") {
			return pyVal{}, errors.New("expected ',' or '}'")
		}
		p.i++
		for _, it := range items {
			if !it.hashable() {
				return pyVal{}, errors.New("unhashable set item")
			}
		}
		return pyVal{kind: pySetK, items: items}, nil
	}
	d := pyVal{kind: pyDictK}
	key := first
	for {
		if !p.isOp(":") {
			return pyVal{}, errors.New("expected ':'")
		}
		p.i++
		v, err := p.expr(depth + 1)
		if err != nil {
			return pyVal{}, err
		}
		if !key.hashable() {
			return pyVal{}, errors.New("unhashable dict key")
		}
		d.put(key, v)
		if p.isOp(",") {
			p.i++
		}
		if p.isOp("}") {
			p.i++
			return d, nil
		}
		if p.isOp("**") {
			return pyVal{}, errors.New("malformed node or string: dict unpacking")
		}
		if key, err = p.expr(depth + 1); err != nil {
			return pyVal{}, err
		}
	}
}

// put sets a dict entry; a key equal to an earlier one replaces its value
// and keeps its place (and its first spelling), as Python's dict does.
func (d *pyVal) put(k, v pyVal) {
	ck := k.hashKey()
	for i := range d.keys {
		if d.keys[i].hashKey() == ck {
			d.items[i] = v
			return
		}
	}
	d.keys = append(d.keys, k)
	d.items = append(d.items, v)
}

// get returns the value under a str key.
func (d pyVal) get(key string) (pyVal, bool) {
	want := pyVal{kind: pyStr, s: key}.hashKey()
	for i, k := range d.keys {
		if k.hashKey() == want {
			return d.items[i], true
		}
	}
	return pyVal{}, false
}

func (v pyVal) hashable() bool {
	switch v.kind {
	case pyListK, pySetK, pyDictK:
		return false
	case pyTupleK:
		for _, it := range v.items {
			if !it.hashable() {
				return false
			}
		}
	}
	return true
}

// hashKey is equal for values Python's == and hash treat as the same dict
// key (1 == 1.0 == True; "a" != b"a").
func (v pyVal) hashKey() string {
	switch v.kind {
	case pyNone:
		return "N"
	case pyEllipsis:
		return "E"
	case pyStr:
		return "s" + v.s
	case pyBytes:
		return "b" + v.s
	case pyBool:
		if v.b {
			return "n1"
		}
		return "n0"
	case pyInt:
		return "n" + v.i.String()
	case pyFloat:
		if v.f == math.Trunc(v.f) && math.Abs(v.f) < 1e18 {
			return "n" + strconv.FormatInt(int64(v.f), 10)
		}
		return "f" + strconv.FormatFloat(v.f, 'g', -1, 64)
	case pyComplex:
		return "c?"
	case pyTupleK:
		var b strings.Builder
		b.WriteString("t(")
		for _, it := range v.items {
			b.WriteString(it.hashKey())
			b.WriteString(",")
		}
		b.WriteString(")")
		return b.String()
	}
	return "?"
}

// pyNumber evaluates a number token as Python's tokenizer and compiler
// would (syntax errors for what Python rejects).
func pyNumber(text string) (pyVal, error) {
	bad := fmt.Errorf("invalid number %q", clip(text))
	lower := strings.ToLower(text)
	if strings.HasSuffix(lower, "j") {
		if _, err := pyFloatText(text[:len(text)-1]); err != nil {
			return pyVal{}, bad
		}
		return pyVal{kind: pyComplex}, nil
	}
	if strings.HasPrefix(lower, "0x") || strings.HasPrefix(lower, "0o") || strings.HasPrefix(lower, "0b") {
		digits := strings.TrimPrefix(text[2:], "_")
		if !underscoresOK(digits) {
			return pyVal{}, bad
		}
		base := map[byte]int{'x': 16, 'o': 8, 'b': 2}[lower[1]]
		n, ok := new(big.Int).SetString(strings.ReplaceAll(digits, "_", ""), base)
		if !ok {
			return pyVal{}, bad
		}
		return pyVal{kind: pyInt, i: n}, nil
	}
	if strings.ContainsAny(lower, ".e") {
		f, err := pyFloatText(text)
		if err != nil {
			return pyVal{}, bad
		}
		return pyVal{kind: pyFloat, f: f}, nil
	}
	if !underscoresOK(text) {
		return pyVal{}, bad
	}
	d := strings.ReplaceAll(text, "_", "")
	if len(d) > 1 && d[0] == '0' && strings.Trim(d, "0") != "" {
		return pyVal{}, fmt.Errorf("leading zeros in decimal integer literals are not permitted")
	}
	n, ok := new(big.Int).SetString(d, 10)
	if !ok {
		return pyVal{}, bad
	}
	return pyVal{kind: pyInt, i: n}, nil
}

// underscoresOK: single underscores between digits only.
func underscoresOK(s string) bool {
	return s != "" && s[0] != '_' && s[len(s)-1] != '_' && !strings.Contains(s, "__")
}

func pyFloatText(s string) (float64, error) {
	for _, part := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == '.' || r == 'e' || r == '+' || r == '-' }) {
		if !underscoresOK(part) {
			return 0, errors.New("bad underscores")
		}
	}
	if strings.Contains(s, "_.") || strings.Contains(s, "._") || strings.Contains(strings.ToLower(s), "_e") || strings.Contains(strings.ToLower(s), "e_") {
		return 0, errors.New("bad underscores")
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, err
	}
	return f, nil
}

// pyFilterLongs drops the "L" after integer tokens, as NumPy's
// _filter_header does for version 1 and 2 headers (Python 2 writers).
func pyFilterLongs(toks []pyToken) []pyToken {
	out := toks[:0:0]
	for i, t := range toks {
		if t.kind == tName && t.text == "L" && i > 0 && toks[i-1].kind == tNumber {
			continue
		}
		out = append(out, t)
	}
	return out
}
