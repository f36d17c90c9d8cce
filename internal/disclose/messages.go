package disclose

import (
	"embed"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/vulndb"
)

// The notice's words in every language (internal/locale message files).
//
//go:embed messages.en.yaml messages.ja.yaml
var messageFiles embed.FS

// Messages is the source of the notice's own words. A printer that writes
// notices needs risk.Messages() and vulndb.Messages() in its catalogue too.
func Messages() locale.Source {
	return func(b *locale.Builder) error { return b.LoadFS(messageFiles, "messages.*.yaml") }
}

// Catalogue builds a catalogue of everything a notice says: its own words,
// the findings catalogue and the vulnerability titles.
func Catalogue() (*locale.Catalogue, error) {
	return locale.NewCatalogue(Messages(), risk.Messages(), vulndb.Messages())
}
