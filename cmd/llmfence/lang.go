package main

import (
	"embed"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/audit"
	"github.com/llmfence/llmfence/internal/console"
	"github.com/llmfence/llmfence/internal/datascan"
	"github.com/llmfence/llmfence/internal/disclose"
	"github.com/llmfence/llmfence/internal/locale"
	probereport "github.com/llmfence/llmfence/internal/probe/report"
	"github.com/llmfence/llmfence/internal/report"
)

// The --help texts in Japanese (internal/locale message file): each
// command's summary keyed by its path ("help.keys.create"), the root's
// long text and cobra's headings. The English is each command's Short.
//
//go:embed help.ja.yaml help.en.yaml
var helpFiles embed.FS

// The lines the commands print for people, cli.en.yaml and cli.ja.yaml.
//
//go:embed cli.en.yaml cli.ja.yaml
var cliFiles embed.FS

// messageSources lists every package whose words llmfence prints, beside
// the scan report's (report.Catalogue adds the report's, the findings
// catalogue's and the vulnerability titles). A command with its own
// messages adds its package's Source here (see docs/i18n.md).
func messageSources(root *cobra.Command) []locale.Source {
	return []locale.Source{
		helpMessages(root),
		audit.Messages(),
		console.Messages(),
		datascan.Messages(),
		probereport.Messages(),
		disclose.Messages(),
		func(b *locale.Builder) error { return b.LoadFS(cliFiles, "cli.*.yaml") },
	}
}

// helpID is the message ID of a command's summary: "help.scan",
// "help.keys.create", "help.llmfence" for the root.
func helpID(c *cobra.Command) string {
	if !c.HasParent() {
		return "help." + c.Name()
	}
	path := strings.Fields(c.CommandPath())[1:]
	return "help." + strings.Join(path, ".")
}

// walkCommands calls fn on c and every command below it, with cobra's own
// help and completion commands added as a run would add them.
func walkCommands(root *cobra.Command, fn func(*cobra.Command)) {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		fn(c)
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}

// helpMessages is the source of the --help texts: the English summaries
// are the commands' Short texts, the Japanese ones help.ja.yaml.
func helpMessages(root *cobra.Command) locale.Source {
	return func(b *locale.Builder) error {
		var msgs []*locale.Message
		walkCommands(root, func(c *cobra.Command) {
			if c.Short != "" {
				msgs = append(msgs, &locale.Message{ID: helpID(c), Other: c.Short})
			}
		})
		msgs = append(msgs, &locale.Message{ID: "help.llmfence.long", Other: root.Long})
		if err := b.Add(locale.English, "cobra commands' Short (cmd/llmfence)", msgs...); err != nil {
			return err
		}
		return b.LoadFS(helpFiles, "help.*.yaml")
	}
}

// langFromArgs reads --lang from the command line before cobra parses it,
// so --help is already in that language; otherwise the environment's
// language (LC_ALL, LC_MESSAGES, LANG). A bad --lang value is left for the
// flag's own check to report.
func langFromArgs(args []string, getenv func(string) string) locale.Lang {
	for i, a := range args {
		if a == "--" {
			break
		}
		v, ok := strings.CutPrefix(a, "--lang=")
		if !ok && a == "--lang" && i+1 < len(args) {
			v, ok = args[i+1], true
		}
		if ok {
			if l, err := locale.ParseLang(v); err == nil {
				return l
			}
		}
	}
	return locale.FromEnv(getenv)
}

// setupLang builds the message catalogue, picks the language from the
// command line or the environment, says --help in it, and registers the
// --lang flag, whose check sets e.text for the command that runs.
func setupLang(root *cobra.Command, e *env, args []string) error {
	cat, err := report.Catalogue(messageSources(root)...)
	if err != nil {
		return fmt.Errorf("loading llmfence's messages: %w", err)
	}
	lang := langFromArgs(args, os.Getenv)
	e.text = cat.Printer(lang)
	root.PersistentFlags().Var(&langValue{e: e, cat: cat}, "lang",
		"language of human-facing output: en or ja (default from LC_ALL, LC_MESSAGES, LANG); JSON and CSV never change")
	localizeHelp(root, e.text)
	return nil
}

// langValue is the --lang flag: setting it switches the printer.
type langValue struct {
	e   *env
	cat *locale.Catalogue
}

func (v *langValue) String() string {
	if v.e.text == nil {
		return ""
	}
	return string(v.e.text.Lang())
}

func (v *langValue) Set(s string) error {
	l, err := locale.ParseLang(s)
	if err != nil {
		return err
	}
	v.e.text = v.cat.Printer(l)
	return nil
}

func (v *langValue) Type() string { return "lang" }

// localizeHelp replaces every command's summary, the root's long text and
// cobra's usage headings with the printer's language. English keeps the
// texts as written.
func localizeHelp(root *cobra.Command, p *locale.Printer) {
	if p.Lang() == locale.English {
		return
	}
	walkCommands(root, func(c *cobra.Command) {
		if id := helpID(c); c.Short != "" && p.Has(id) {
			c.Short = p.T(id)
		}
	})
	if p.Has("help.llmfence.long") {
		root.Long = p.T("help.llmfence.long")
	}
	root.SetUsageTemplate(usageTemplate(root.UsageTemplate(), p))
}

// usageTemplate translates the headings of cobra's usage template.
func usageTemplate(tmpl string, p *locale.Printer) string {
	return strings.NewReplacer(
		"Usage:", p.T("help.heading.usage"),
		"\nAliases:\n", "\n"+p.T("help.heading.aliases")+"\n",
		"\nExamples:\n", "\n"+p.T("help.heading.examples")+"\n",
		"\nAvailable Commands:", "\n"+p.T("help.heading.commands"),
		"\nAdditional Commands:", "\n"+p.T("help.heading.additional_commands"),
		"\nGlobal Flags:\n", "\n"+p.T("help.heading.global_flags")+"\n",
		"\nFlags:\n", "\n"+p.T("help.heading.flags")+"\n",
		"\nAdditional help topics:", "\n"+p.T("help.heading.topics"),
		`Use "{{.CommandPath}} [command] --help" for more information about a command.`,
		p.T("help.heading.more", "cmd", "{{.CommandPath}}"),
	).Replace(tmpl)
}
