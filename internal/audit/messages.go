package audit

import (
	"embed"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/vulndb"
)

// The audit table's words in every language (internal/locale):
// messages.en.yaml and messages.ja.yaml.
//
//go:embed messages.en.yaml messages.ja.yaml
var messageFiles embed.FS

// Messages is the source of the audit's own words.
func Messages() locale.Source {
	return func(b *locale.Builder) error { return b.LoadFS(messageFiles, "messages.*.yaml") }
}

// printerOr returns p, or an English printer of the audit's, the
// findings catalogue's and the vulnerability titles' messages.
func printerOr(p *locale.Printer) (*locale.Printer, error) {
	if p != nil {
		return p, nil
	}
	c, err := locale.NewCatalogue(Messages(), risk.Messages(), vulndb.Messages())
	if err != nil {
		return nil, err
	}
	return c.Printer(locale.English), nil
}
