package gguf

import (
	_ "embed"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/llmfence/llmfence/internal/datafile"
	"github.com/llmfence/llmfence/internal/verdict"
)

//go:embed findings.yaml
var findingsYAML []byte

//go:embed tables.yaml
var tablesYAML []byte

//go:embed templates.yaml
var templatesYAML []byte

// GGMLType describes one ggml tensor type: how many elements share a block
// and how many bytes a block takes.
type GGMLType struct {
	ID     uint32 `yaml:"id"`
	Name   string `yaml:"name"`
	Block  uint64 `yaml:"block"`
	Size   uint64 `yaml:"size"`
	Legacy bool   `yaml:"legacy"`
}

type knownKey struct {
	Key   string   `yaml:"key"`
	Types []string `yaml:"types"`
}

type tables struct {
	Version   int               `yaml:"version"`
	GGMLTypes []GGMLType        `yaml:"ggml_types"`
	FileTypes map[uint32]string `yaml:"file_types"`
	KnownKeys []knownKey        `yaml:"known_keys"`

	types map[uint32]GGMLType
}

type family struct {
	Name          string   `yaml:"name"`
	Markers       []string `yaml:"markers"`
	Architectures []string `yaml:"architectures"`
}

type instruction struct {
	ID      string   `yaml:"id"`
	Pattern string   `yaml:"pattern"`
	Benign  []string `yaml:"benign"`
	re      *regexp.Regexp
}

type templateData struct {
	Version            int           `yaml:"version"`
	Families           []family      `yaml:"families"`
	BenignContentTests []string      `yaml:"benign_content_tests"`
	Instructions       []instruction `yaml:"instructions"`
	Sandbox            sandboxData   `yaml:"sandbox"`
	Content            contentData   `yaml:"content"`
	// Confusables maps look-alike characters (Cyrillic, Greek, ...) to the
	// Latin letters they imitate, for matching hidden instructions.
	Confusables map[string]string `yaml:"confusables"`
	// Invisible lists characters removed before matching (zero-width
	// spaces and joiners, soft hyphens, BOMs), as code points "U+200B".
	Invisible []string `yaml:"invisible"`

	benign    []*regexp.Regexp
	confuse   map[rune]rune
	invisible map[rune]bool
	fallback  fallbackPatterns
}

// fallbackPatterns are the token fallback's patterns built from the
// lexicon (used when gonja cannot parse a template).
type fallbackPatterns struct {
	global  *regexp.Regexp // a sandbox global reaching for attributes
	content *regexp.Regexp // message text named in a condition
	testOp  *regexp.Regexp // a test of text against a literal
}

// compileFallback builds the token fallback's patterns from the lexicon.
func (t *templateData) compileFallback() error {
	alt := func(words []string) string {
		q := make([]string, len(words))
		for i, w := range words {
			q[i] = regexp.QuoteMeta(w)
		}
		return strings.Join(q, "|")
	}
	if len(t.Sandbox.Globals) == 0 || len(t.Content.Names) == 0 || len(t.Content.Tests) == 0 {
		return fmt.Errorf("sandbox globals, content names and content tests are required")
	}
	var err error
	compile := func(expr string) *regexp.Regexp {
		re, cerr := regexp.Compile(expr)
		if cerr != nil && err == nil {
			err = cerr
		}
		return re
	}
	t.fallback = fallbackPatterns{
		global:  compile(`\b(` + alt(t.Sandbox.Globals) + `)\s*(\.\s*_|\.\s*\w+\s*\.|\[|\|\s*attr)`),
		content: compile(`\b(` + alt(t.Content.Names) + `)\b|\[\s*['"]content['"]\s*\]`),
		testOp:  compile(`\bin\b|==|!=|\.(` + alt(t.Content.Tests) + `)\s*\(`),
	}
	return err
}

// sandboxData is the Jinja sandbox-escape lexicon (GGUF-050).
type sandboxData struct {
	// Globals of the Jinja environment whose attributes lead to Python
	// internals.
	Globals []string `yaml:"globals"`
	// Attributes only code execution needs (any name starting with "_"
	// counts too).
	Attributes []string `yaml:"attributes"`
	// Filters that read attributes by a name given as an argument.
	AttributeFilters []string `yaml:"attribute_filters"`

	globals, attrs, attrFilters map[string]bool
}

// contentData names what message text looks like in templates (GGUF-054).
type contentData struct {
	// Names templates use for message text.
	Names []string `yaml:"names"`
	// String methods and filters that test or cut text by a literal.
	Tests []string `yaml:"tests"`
	// Keys of multimodal content parts ({"type": "image", ...}): testing
	// a part for these is structure, not a trigger.
	PartKeys []string `yaml:"part_keys"`
	// Literals a condition names beside message text that are roles or
	// field names, not triggers (the token fallback only).
	RoleWords []string `yaml:"role_words"`

	names, tests, partKeys, roleWords map[string]bool
}

// data is everything the package loads from its embedded files. It is
// built once and never changed afterwards.
type data struct {
	cat  *verdict.Catalogue
	tab  *tables
	tmpl *templateData
}

// loadData loads the embedded files once, on first use.
var loadData = sync.OnceValues(func() (*data, error) {
	cat, err := verdict.LoadCatalogue("internal/gguf/findings.yaml", findingsYAML, "GGUF-")
	if err != nil {
		return nil, err
	}
	tab, err := parseTables(tablesYAML)
	if err != nil {
		return nil, err
	}
	td, err := parseTemplateData(templatesYAML)
	if err != nil {
		return nil, err
	}
	return &data{cat: cat, tab: tab, tmpl: td}, nil
})

func parseTables(b []byte) (*tables, error) {
	return datafile.Decode("internal/gguf/tables.yaml", b, (*tables).check)
}

func (t *tables) check() error {
	t.types = map[uint32]GGMLType{}
	for _, g := range t.GGMLTypes {
		if g.Block == 0 || g.Size == 0 || g.Name == "" {
			return fmt.Errorf("ggml type %d needs name, block and size", g.ID)
		}
		if _, dup := t.types[g.ID]; dup {
			return fmt.Errorf("duplicate ggml type %d", g.ID)
		}
		t.types[g.ID] = g
	}
	for _, k := range t.KnownKeys {
		if k.Key == "" || len(k.Types) == 0 {
			return fmt.Errorf("known key needs key and types")
		}
		for _, ty := range k.Types {
			if _, ok := parseTypeName(ty); !ok {
				return fmt.Errorf("key %s: unknown type %q", k.Key, ty)
			}
		}
	}
	return nil
}

func parseTemplateData(b []byte) (*templateData, error) {
	return datafile.Decode("internal/gguf/templates.yaml", b, (*templateData).check)
}

func (t *templateData) check() error {
	for _, f := range t.Families {
		if f.Name == "" || len(f.Markers) == 0 || len(f.Architectures) == 0 {
			return fmt.Errorf("family %q needs markers and architectures", f.Name)
		}
	}
	for _, p := range t.BenignContentTests {
		re, err := regexp.Compile(p)
		if err != nil {
			return fmt.Errorf("benign content test %q: %w", p, err)
		}
		t.benign = append(t.benign, re)
	}
	for i := range t.Instructions {
		in := &t.Instructions[i]
		re, err := regexp.Compile("(?i)" + in.Pattern)
		if err != nil {
			return fmt.Errorf("instruction %s: %w", in.ID, err)
		}
		in.re = re
	}
	set := func(l []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range l {
			m[x] = true
		}
		return m
	}
	t.Sandbox.globals, t.Sandbox.attrs, t.Sandbox.attrFilters = set(t.Sandbox.Globals), set(t.Sandbox.Attributes), set(t.Sandbox.AttributeFilters)
	t.Content.names, t.Content.tests, t.Content.partKeys = set(t.Content.Names), set(t.Content.Tests), set(t.Content.PartKeys)
	t.Content.roleWords = set(t.Content.RoleWords)
	t.confuse = map[rune]rune{}
	for from, to := range t.Confusables {
		f, fn := utf8.DecodeRuneInString(from)
		r, rn := utf8.DecodeRuneInString(to)
		if fn != len(from) || rn != len(to) || f == utf8.RuneError || r == utf8.RuneError {
			return fmt.Errorf("confusable %q -> %q is not one character to one", from, to)
		}
		t.confuse[f] = r
	}
	t.invisible = map[rune]bool{}
	for _, cp := range t.Invisible {
		v, err := strconv.ParseUint(strings.TrimPrefix(cp, "U+"), 16, 32)
		if err != nil || !strings.HasPrefix(cp, "U+") {
			return fmt.Errorf("invisible %q is not U+XXXX", cp)
		}
		t.invisible[rune(v)] = true
	}
	return t.compileFallback()
}

// Catalogue returns the package's findings catalogue.
func Catalogue() (*verdict.Catalogue, error) {
	d, err := loadData()
	if err != nil {
		return nil, err
	}
	return d.cat, nil
}

// typeSpec is a value type as named in tables.yaml: a scalar type, or an
// array with an element type.
type typeSpec struct {
	t    ValueType
	elem ValueType
}

func parseTypeName(s string) (typeSpec, bool) {
	if e, ok := strings.CutPrefix(s, "array:"); ok {
		et, ok := valueTypeByName(e)
		return typeSpec{t: TypeArray, elem: et}, ok && et != TypeArray
	}
	t, ok := valueTypeByName(s)
	return typeSpec{t: t}, ok && t != TypeArray
}

// expectedTypes returns the accepted types of key in a file of the given
// architecture, or nil when the spec does not fix its type.
func (t *tables) expectedTypes(key, arch string) []string {
	for _, k := range t.KnownKeys {
		name := k.Key
		if rest, ok := strings.CutPrefix(name, "{arch}."); ok {
			if arch == "" {
				continue
			}
			name = arch + "." + rest
		}
		if name == key {
			return k.Types
		}
	}
	if strings.HasPrefix(key, "tokenizer.chat_template.") {
		return []string{"string"}
	}
	return nil
}
