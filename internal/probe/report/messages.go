package report

import (
	"embed"
	"fmt"
	"strings"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/probe"
	"github.com/llmfence/llmfence/internal/risk"
)

// probe's words in every language (internal/locale): messages.en.yaml and
// messages.ja.yaml, with the reasons behind the verdicts (the IDs
// internal/probe writes into a summary's reason_msgs).
//
//go:embed messages.en.yaml messages.ja.yaml
var messageFiles embed.FS

// Messages is the source of probe's own words (severity and category
// names come from risk.Messages).
func Messages() locale.Source {
	return func(b *locale.Builder) error { return b.LoadFS(messageFiles, "messages.*.yaml") }
}

// Catalogue builds a catalogue of everything the table and the report
// say: probe's words and internal/risk's severity and category names.
func Catalogue() (*locale.Catalogue, error) {
	return locale.NewCatalogue(Messages(), risk.Messages())
}

func printerOr(p *locale.Printer) (*locale.Printer, error) {
	if p != nil {
		return p, nil
	}
	c, err := Catalogue()
	if err != nil {
		return nil, fmt.Errorf("probe messages: %w", err)
	}
	return c.Printer(locale.English), nil
}

// word says a value of a fixed vocabulary (a suite, a verdict): the
// message probe.GROUP.VALUE, or the value itself when there is none.
func word(p *locale.Printer, group, value string) string {
	id := "probe." + group + "." + value
	if value == "" || !p.Has(id) {
		return value
	}
	return p.T(id)
}

// Reason says why a suite's verdict is what it is, in the printer's
// language. English is the summary's own Reason, as in the JSON output;
// other languages say its reason_msgs (falling back to the English when a
// summary has none, as one read from an older journal).
func Reason(p *locale.Printer, s probe.Summary) string {
	if p.Lang() == locale.English || len(s.ReasonMsgs) == 0 {
		return s.Reason
	}
	parts := make([]string, len(s.ReasonMsgs))
	for i, m := range s.ReasonMsgs {
		parts[i] = p.Message(m.ID, m.Args)
	}
	return strings.Join(parts, p.T("probe.reason.separator"))
}

func yesNo(p *locale.Printer, b bool) string {
	if b {
		return p.T("probe.yes")
	}
	return p.T("probe.no")
}

// category is a harm category's name (internal/risk's vocabulary).
func category(p *locale.Printer, c string) string {
	if p.Lang() == locale.English || !p.Has(risk.CategoryID(c)) {
		return c
	}
	return p.T(risk.CategoryID(c))
}
