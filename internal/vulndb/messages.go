package vulndb

import (
	"embed"

	"github.com/llmfence/llmfence/internal/locale"
)

// The titles of the embedded vulnerabilities in every language
// (internal/locale): English is each OSV record's summary, Japanese is
// titles.ja.yaml.
//
//go:embed titles.ja.yaml
var titleFiles embed.FS

// TitleID is the message ID of a vulnerability's title (its OSV summary),
// by the vulnerability's ID (Vuln.ID).
func TitleID(id string) string { return "vulndb." + id + ".title" }

// Messages is the source of the embedded vulnerabilities' titles in
// English and Japanese. A record imported later has its English title
// only; reports show that.
func Messages() locale.Source {
	return func(b *locale.Builder) error {
		db, err := Embedded()
		if err != nil {
			return err
		}
		var msgs []*locale.Message
		for _, v := range db.Vulns() {
			msgs = append(msgs, &locale.Message{ID: TitleID(v.ID), Other: v.Title})
		}
		if err := b.Add(locale.English, "internal/vulndb/osv", msgs...); err != nil {
			return err
		}
		return b.LoadFS(titleFiles, "titles.ja.yaml")
	}
}
