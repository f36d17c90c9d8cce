package datascan

import (
	"embed"
	"fmt"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/risk"
)

// datascan's words for people in every language (internal/locale):
// messages.en.yaml and messages.ja.yaml. The JSON Lines output, the
// manifest and the redacted copies never use them.
//
//go:embed messages.en.yaml messages.ja.yaml
var messageFiles embed.FS

// Messages is the source of datascan's own words (the severity names
// come from risk.Messages).
func Messages() locale.Source {
	return func(b *locale.Builder) error { return b.LoadFS(messageFiles, "messages.*.yaml") }
}

// Catalogue builds a catalogue of everything datascan's table and report
// say: its own words and the severity names of internal/risk.
func Catalogue() (*locale.Catalogue, error) {
	return locale.NewCatalogue(Messages(), risk.Messages())
}

// printerOr returns p, or an English printer when p is nil.
func printerOr(p *locale.Printer) (*locale.Printer, error) {
	if p != nil {
		return p, nil
	}
	c, err := Catalogue()
	if err != nil {
		return nil, fmt.Errorf("datascan messages: %w", err)
	}
	return c.Printer(locale.English), nil
}

// kindLabel is a finding kind as a person reads it.
func kindLabel(p *locale.Printer, kind string) string {
	id := "datascan.kind." + kind + ".label"
	if !p.Has(id) {
		return kind
	}
	return p.T(id)
}

// kindWhy explains what a detector looks for; "" for an unknown kind.
func kindWhy(p *locale.Printer, kind string) string {
	id := "datascan.kind." + kind + ".why"
	if !p.Has(id) {
		return ""
	}
	return p.T(id)
}

// humanSize is a byte count as a person reads it: 12.0M.
func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
