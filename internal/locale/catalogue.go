package locale

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	texttemplate "text/template"
	"text/template/parse"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	i18ntemplate "github.com/nicksnyder/go-i18n/v2/i18n/template"
	"gopkg.in/yaml.v3"
)

// Message is one text in one language: go-i18n's message, with the ID,
// the plural forms (English uses One and Other, Japanese only Other) and
// a Description for translators.
type Message = i18n.Message

// Source adds one package's messages to a catalogue.
type Source func(*Builder) error

// Builder collects messages while a catalogue is built.
type Builder struct {
	c      *Catalogue
	source string
}

// Catalogue holds every message in every language. It is immutable after
// NewCatalogue and safe for concurrent use.
type Catalogue struct {
	bundle *i18n.Bundle
	msgs   map[Lang]map[string]*Message
	where  map[Lang]map[string]string // ID -> file or source that defined it
}

// NewCatalogue builds a catalogue from sources. It fails when a message
// file does not parse, names a language llmfence does not speak, or
// defines an ID another file already defined in the same language.
func NewCatalogue(sources ...Source) (*Catalogue, error) {
	c := &Catalogue{
		bundle: i18n.NewBundle(English.Tag()),
		msgs:   map[Lang]map[string]*Message{},
		where:  map[Lang]map[string]string{},
	}
	c.bundle.RegisterUnmarshalFunc("yaml", yaml.Unmarshal)
	for _, l := range Langs {
		c.msgs[l] = map[string]*Message{}
		c.where[l] = map[string]string{}
	}
	var errs []error
	for _, src := range sources {
		if src == nil {
			continue
		}
		if err := src(&Builder{c: c}); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// Add adds messages in one language, defined by the named source (a file
// name or a description such as "internal/risk/catalogue.yaml").
func (b *Builder) Add(lang Lang, source string, msgs ...*Message) error {
	if !slices.Contains(Langs, lang) {
		return fmt.Errorf("%s: language %q: want one of %v", source, lang, Langs)
	}
	var errs []error
	for _, m := range msgs {
		if m == nil || m.ID == "" {
			errs = append(errs, fmt.Errorf("%s: a message without an ID", source))
			continue
		}
		if prev, dup := b.c.where[lang][m.ID]; dup {
			errs = append(errs, fmt.Errorf("%s: message %q (%s) is already defined by %s", source, m.ID, lang, prev))
			continue
		}
		if m.Other == "" && m.One == "" {
			errs = append(errs, fmt.Errorf("%s: message %q (%s) has no text", source, m.ID, lang))
			continue
		}
		for _, form := range forms(m) {
			if _, err := parseTemplate(form.text); err != nil {
				errs = append(errs, fmt.Errorf("%s: message %q (%s, %s): %w", source, m.ID, lang, form.name, err))
			}
		}
		b.c.msgs[lang][m.ID] = m
		b.c.where[lang][m.ID] = source
		if err := b.c.bundle.AddMessages(lang.Tag(), m); err != nil {
			errs = append(errs, fmt.Errorf("%s: message %q: %w", source, m.ID, err))
		}
	}
	return errors.Join(errs...)
}

// AddText adds one message with a single form.
func (b *Builder) AddText(lang Lang, source, id, text string) error {
	return b.Add(lang, source, &Message{ID: id, Other: text})
}

// LoadFS loads go-i18n message files matching pattern (path.Match
// syntax) from fsys. A file's name says its language: NAME.en.yaml,
// NAME.ja.yaml.
func (b *Builder) LoadFS(fsys fs.FS, pattern string) error {
	names, err := fs.Glob(fsys, pattern)
	if err != nil {
		return fmt.Errorf("message files %q: %w", pattern, err)
	}
	if len(names) == 0 {
		return fmt.Errorf("message files %q: none found", pattern)
	}
	var errs []error
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("message file %s: %w", name, err))
			continue
		}
		if err := b.LoadBytes(name, data); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// LoadBytes loads one go-i18n message file; name says its language
// (NAME.ja.yaml).
func (b *Builder) LoadBytes(name string, data []byte) error {
	base := path.Base(name)
	parts := strings.Split(base, ".")
	if len(parts) < 3 {
		return fmt.Errorf("message file %s: name it NAME.LANG.yaml", name)
	}
	lang, err := ParseLang(parts[len(parts)-2])
	if err != nil || string(lang) != parts[len(parts)-2] {
		return fmt.Errorf("message file %s: language %q: want one of %v", name, parts[len(parts)-2], Langs)
	}
	msgs, err := i18n.ParseMessageFileBytes(data, base, map[string]i18n.UnmarshalFunc{"yaml": yaml.Unmarshal})
	if err != nil {
		return fmt.Errorf("message file %s: %w", name, err)
	}
	return b.Add(lang, name, msgs.Messages...)
}

// IDs returns the IDs of the messages in one language, sorted.
func (c *Catalogue) IDs(lang Lang) []string {
	out := make([]string, 0, len(c.msgs[lang]))
	for id := range c.msgs[lang] {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Has reports whether the message exists in the language.
func (c *Catalogue) Has(lang Lang, id string) bool {
	_, ok := c.msgs[lang][id]
	return ok
}

// Placeholders returns the fields a message's English text uses, sorted.
func (c *Catalogue) Placeholders(id string) []string {
	m, ok := c.msgs[English][id]
	if !ok {
		return nil
	}
	fields, _ := messageFields(m)
	return fields
}

// Source names where a message was defined.
func (c *Catalogue) Source(lang Lang, id string) string { return c.where[lang][id] }

// Check returns every problem with the catalogue's messages, one error
// each: a message missing in a language, placeholders that differ between
// the languages, a plural form missing ("other" in every language, and
// "one" in English when the message is plural), or a text that does not
// render with its own placeholders.
func (c *Catalogue) Check() error {
	var errs []error
	all := map[string]bool{}
	for _, l := range Langs {
		for id := range c.msgs[l] {
			all[id] = true
		}
	}
	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		var ref []string
		for i, l := range Langs {
			m, ok := c.msgs[l][id]
			if !ok {
				other := c.where[English][id]
				if other == "" {
					other = c.where[Japanese][id]
				}
				errs = append(errs, fmt.Errorf("message %q (defined by %s) has no %s text", id, other, l))
				continue
			}
			if m.Other == "" {
				errs = append(errs, fmt.Errorf("message %q (%s, %s) has no \"other\" form", id, l, c.where[l][id]))
			}
			fields, err := messageFields(m)
			if err != nil {
				errs = append(errs, fmt.Errorf("message %q (%s, %s): %w", id, l, c.where[l][id], err))
				continue
			}
			if i == 0 || ref == nil {
				ref = fields
			} else if !slices.Equal(ref, fields) {
				errs = append(errs, fmt.Errorf("message %q: placeholders differ: %s has %v, %s has %v", id, English, ref, l, fields))
			}
			if l == English && slices.Contains(fields, "count") && m.One == "" {
				// "count" selects the plural form; without "one" it reads "1 models".
				errs = append(errs, fmt.Errorf("message %q (en, %s) takes a count but has no \"one\" form", id, c.where[l][id]))
			}
			if err := renderAll(m, fields); err != nil {
				errs = append(errs, fmt.Errorf("message %q (%s, %s): %w", id, l, c.where[l][id], err))
			}
		}
	}
	return errors.Join(errs...)
}

type form struct{ name, text string }

func forms(m *Message) []form {
	var out []form
	for _, f := range []form{{"zero", m.Zero}, {"one", m.One}, {"two", m.Two}, {"few", m.Few}, {"many", m.Many}, {"other", m.Other}} {
		if f.text != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseTemplate(text string) (*texttemplate.Template, error) {
	return texttemplate.New("").Option("missingkey=error").Parse(text)
}

// messageFields returns the union of the fields the message's forms use.
func messageFields(m *Message) ([]string, error) {
	set := map[string]bool{}
	for _, f := range forms(m) {
		t, err := parseTemplate(f.text)
		if err != nil {
			return nil, fmt.Errorf("%s form: %w", f.name, err)
		}
		if t.Tree != nil {
			collectFields(t.Tree.Root, set)
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

func collectFields(n parse.Node, set map[string]bool) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			collectFields(c, set)
		}
	case *parse.ActionNode:
		collectFields(n.Pipe, set)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			collectFields(c, set)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			collectFields(a, set)
		}
	case *parse.FieldNode:
		set[strings.Join(n.Ident, ".")] = true
	case *parse.IfNode:
		collectFields(n.Pipe, set)
		collectFields(n.List, set)
		collectFields(n.ElseList, set)
	case *parse.RangeNode:
		collectFields(n.Pipe, set)
		collectFields(n.List, set)
		collectFields(n.ElseList, set)
	case *parse.WithNode:
		collectFields(n.Pipe, set)
		collectFields(n.List, set)
		collectFields(n.ElseList, set)
	}
}

// renderAll executes every form with each placeholder set, so a text
// that cannot render (a typo in a template function, say) fails the check
// rather than a report.
func renderAll(m *Message, fields []string) error {
	data := map[string]string{}
	for _, f := range fields {
		data[f] = "x"
	}
	if slices.Contains(fields, "count") {
		data["count"] = "2"
	}
	for _, f := range forms(m) {
		t, err := parseTemplate(f.text)
		if err != nil {
			return err
		}
		var b strings.Builder
		if err := t.Execute(&b, data); err != nil {
			return fmt.Errorf("%s form does not render: %w", f.name, err)
		}
	}
	return nil
}

// textParser renders go-i18n templates, failing on a field the caller did
// not pass.
var textParser = &i18ntemplate.TextParser{Option: "missingkey=error"}
