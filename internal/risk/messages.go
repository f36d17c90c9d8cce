package risk

import (
	"embed"
	"strconv"
	"strings"

	"github.com/llmfence/llmfence/internal/datafile"
	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/service"
)

// The words of risk in every language (internal/locale): the catalogue's
// English is catalogue.yaml, its Japanese catalogue.ja.yaml; the details'
// and labels' texts are details.LANG.yaml.
//
//go:embed catalogue.ja.yaml details.en.yaml details.ja.yaml
var messageFiles embed.FS

// Message IDs of a catalogue entry's texts.
func TitleID(id string) string             { return "risk." + id + ".title" }
func WhyID(id string) string               { return "risk." + id + ".why" }
func FixID(id, key string) string          { return "risk." + id + ".fix." + key }
func SeverityID(s service.Severity) string { return "risk.severity." + string(s) }
func CategoryID(c string) string           { return "risk.category." + c }

// Messages is the source of the embedded catalogue's messages and of the
// details' texts, in English and Japanese.
func Messages() locale.Source {
	cf, err := datafile.Decode[catalogueFile](catalogueName, catalogueYAML, nil)
	return func(b *locale.Builder) error {
		if err != nil {
			return err
		}
		return addMessages(b, cf.Entries)
	}
}

// addMessages adds the entries' English (from the catalogue) and every
// message file of the package.
func addMessages(b *locale.Builder, entries []Entry) error {
	const src = "internal/risk/catalogue.yaml"
	var msgs []*locale.Message
	for _, en := range entries {
		msgs = append(msgs,
			&locale.Message{ID: TitleID(en.ID), Other: oneLine(en.Title)},
			&locale.Message{ID: WhyID(en.ID), Other: oneLine(en.Why)})
		for k, f := range en.Fix {
			msgs = append(msgs, &locale.Message{ID: FixID(en.ID, k), Other: oneLine(f)})
		}
	}
	if err := b.Add(locale.English, src, msgs...); err != nil {
		return err
	}
	return b.LoadFS(messageFiles, "*.yaml")
}

// oneLine folds the catalogue's wrapped text to one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// say renders a message in English (the text machine-readable output
// keeps) and returns it with the message, for readers of other languages.
func (e *Engine) say(id string, kv ...string) (string, *service.Message) {
	args := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		args[kv[i]] = kv[i+1]
	}
	return e.en.Message(id, args), &service.Message{ID: id, Args: args}
}

// names lists up to five names and how many more there are ("" when none).
func names(all []string) (shown, more string) {
	const show = 5
	if len(all) <= show {
		return strings.Join(all, ", "), ""
	}
	return strings.Join(all[:show], ", "), strconv.Itoa(len(all) - show)
}
