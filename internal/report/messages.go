package report

import (
	"embed"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/vulndb"
)

// The report's words in every language (internal/locale): the table's
// and the HTML report's labels, messages.en.yaml and messages.ja.yaml.
//
//go:embed messages.en.yaml messages.ja.yaml
var messageFiles embed.FS

// Messages is the source of the report's own words.
func Messages() locale.Source {
	return func(b *locale.Builder) error { return b.LoadFS(messageFiles, "messages.*.yaml") }
}

// Catalogue builds a catalogue of everything a scan report says: the
// report's words, the findings catalogue (internal/risk) and the
// vulnerability titles (internal/vulndb), plus any extra sources.
func Catalogue(extra ...locale.Source) (*locale.Catalogue, error) {
	return locale.NewCatalogue(append([]locale.Source{Messages(), risk.Messages(), vulndb.Messages()}, extra...)...)
}

// printerOr returns p, or an English printer when p is nil.
func printerOr(p *locale.Printer) (*locale.Printer, error) {
	if p != nil {
		return p, nil
	}
	c, err := Catalogue()
	if err != nil {
		return nil, err
	}
	return c.Printer(locale.English), nil
}
