// Package locale says llmfence's human-facing text in the reader's
// language: English or Japanese. It provides the language choice (the
// --lang flag, else LC_ALL / LC_MESSAGES / LANG), one catalogue of
// messages, a Printer that renders a message in one language, dates in the
// reader's convention, and the display width of text on a terminal (East
// Asian width: a full-width character takes two columns).
//
// # Messages
//
// A message is a text with an ID, in English and in Japanese, kept as data
// beside the content it belongs to. The format is go-i18n's message files
// (github.com/nicksnyder/go-i18n/v2): YAML files named NAME.en.yaml and
// NAME.ja.yaml whose keys are message IDs (nested keys are joined with
// "."), each value a text or a map of CLDR plural forms ("one", "other")
// and a "description" for translators. Placeholders are Go text/template
// fields, {{.port}}, filled from string arguments; a template that names a
// field the caller did not pass fails rather than printing "<no value>".
// The argument "count" selects the plural form.
//
// Some messages are defined by other data rather than message files: the
// English of the findings catalogue is internal/risk/catalogue.yaml, the
// English title of a vulnerability is its OSV record's summary, the
// English help summary of a command is its cobra Short. Their owners add
// them to the catalogue through a Source.
//
// A catalogue is built once from Sources and is immutable afterwards.
// Check reports every message missing in either language and every
// message whose placeholders differ between the languages; each package
// with messages runs it in a test. At run time a message missing in the
// reader's language falls back to English, and an unknown ID prints as
// itself, so a gap shows in the output instead of failing a scan.
//
// # Arguments that name messages
//
// An argument K_msg names a message that says argument K in the reader's
// language; K itself holds the English text, used for English and when
// the named message is unknown (for example the title of a vulnerability
// record imported after the catalogue was built). The named message takes
// its own arguments from the arguments K.NAME: with "change_msg" naming a
// message that says {{.flag}}, the argument "change.flag" fills it.
//
// # Machine-readable output
//
// Nothing here touches JSON Lines or CSV: they stay English whatever the
// language, and carry message IDs (service.Finding.DetailMsg,
// service.Service.RemediationMsgs) so tools can look translations up.
package locale
