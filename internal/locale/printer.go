package locale

import (
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/nicksnyder/go-i18n/v2/i18n"
)

// Printer renders messages in one language. It is immutable and safe for
// concurrent use.
type Printer struct {
	lang Lang
	cat  *Catalogue
	loc  *i18n.Localizer
}

// Printer returns a printer for the language.
func (c *Catalogue) Printer(lang Lang) *Printer {
	if lang != Japanese {
		lang = English
	}
	return &Printer{lang: lang, cat: c, loc: i18n.NewLocalizer(c.bundle, string(lang))}
}

// Lang is the printer's language.
func (p *Printer) Lang() Lang {
	if p == nil {
		return English
	}
	return p.lang
}

// Catalogue is the catalogue the printer renders from.
func (p *Printer) Catalogue() *Catalogue { return p.cat }

// Has reports whether the message exists in the printer's language.
func (p *Printer) Has(id string) bool { return p != nil && p.cat.Has(p.lang, id) }

// T renders a message with arguments given as key, value pairs:
// p.T("report.summary", "count", "3"). See Message for the rules.
func (p *Printer) T(id string, kv ...string) string {
	args := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		args[kv[i]] = kv[i+1]
	}
	return p.Message(id, args)
}

// Message renders a message in the printer's language, falling back to
// English when the language lacks it and to the ID itself when no
// language has it. The argument "count" selects the plural form; an
// argument K_msg names a message that says argument K in the printer's
// language (K holds the English, used for English and when that message
// is unknown).
func (p *Printer) Message(id string, args map[string]string) string {
	if p == nil {
		return id
	}
	data := make(map[string]string, len(args))
	for k, v := range args {
		if !strings.HasSuffix(k, "_msg") {
			data[k] = v
		}
	}
	if p.lang != English {
		for k, v := range args {
			if base, ok := strings.CutSuffix(k, "_msg"); ok && v != "" && p.cat.Has(p.lang, v) {
				data[base] = p.Message(v, subArgs(args, base))
			}
		}
	}
	lc := &i18n.LocalizeConfig{MessageID: id, TemplateData: data, TemplateParser: textParser}
	if c, ok := data["count"]; ok && c != "" {
		lc.PluralCount = c
	}
	out, err := p.loc.Localize(lc)
	if out == "" && err != nil {
		return id // unknown everywhere, or a template that cannot render
	}
	return out
}

// subArgs are the arguments of the message an argument K_msg names: the
// arguments K.NAME, as NAME ("change.flag" is the named message's "flag").
// nil when there are none.
func subArgs(args map[string]string, base string) map[string]string {
	var sub map[string]string
	for k, v := range args {
		if name, ok := strings.CutPrefix(k, base+"."); ok && name != "" {
			if sub == nil {
				sub = map[string]string{}
			}
			sub[name] = v
		}
	}
	return sub
}

// Args copies a message's arguments, so callers can add to them.
func Args(args map[string]string) map[string]string { return maps.Clone(args) }

// Date is a calendar date in the reader's convention: 2025-03-04, or
// 2025年3月4日.
func (p *Printer) Date(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	if p.Lang() == Japanese {
		return fmt.Sprintf("%d年%d月%d日", t.Year(), int(t.Month()), t.Day())
	}
	return t.Format("2006-01-02")
}

// DateString is Date for a YYYY-MM-DD string; other strings are returned
// unchanged.
func (p *Printer) DateString(s string) string {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return s
	}
	return p.Date(t)
}

// DateTime is a moment in UTC in the reader's convention:
// 2025-03-04 10:00:00 UTC, or 2025年3月4日 10:00:00 UTC.
func (p *Printer) DateTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	t = t.UTC()
	if p.Lang() == Japanese {
		return p.Date(t) + " " + t.Format("15:04:05") + " UTC"
	}
	return t.Format("2006-01-02 15:04:05 UTC")
}

// Duration is a span rounded to the second: 1m35s, or 1分35秒.
func (p *Printer) Duration(d time.Duration) string {
	d = d.Round(time.Second)
	if p.Lang() != Japanese {
		return d.String()
	}
	if d == 0 {
		return "0秒"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteString("-")
		d = -d
	}
	h, m, s := int(d/time.Hour), int(d/time.Minute)%60, int(d/time.Second)%60
	if h > 0 {
		fmt.Fprintf(&b, "%d時間", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%d分", m)
	}
	if s > 0 {
		fmt.Fprintf(&b, "%d秒", s)
	}
	return b.String()
}
