package guard

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The settings reference in docs/guard.md sits between these lines and is
// written by writeSettingsReference (go generate ./internal/guard; a test
// fails when it is stale).
const (
	settingsDocBegin = "<!-- settings reference: generated from internal/guard/settings.go by `go generate ./internal/guard`; do not edit by hand -->\n"
	settingsDocEnd   = "<!-- end of the settings reference -->\n"
)

// writeSettingsReference writes the settings table as Markdown: each
// setting's YAML key, flag, default, reload class and help, then what a
// reload applies.
func writeSettingsReference(w io.Writer) error {
	b := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("Every setting has a YAML key (nested: `timeouts.write` is `write:` under\n")
	p("`timeouts:`) and a flag; a flag given on the command line wins over the\n")
	p("file, and keeps winning when the file is reloaded. On reload: *reload*\n")
	p("settings apply to requests that start after it; *restart* settings keep\n")
	p("their running value and the guard logs a warning naming them; the TLS\n")
	p("files are re-read, but turning TLS or client certificates on or off\n")
	p("needs a restart. Durations: `90s`, `15m`, `720h`.\n\n")
	p("| setting | flag | default | on reload | what |\n|---|---|---|---|---|\n")
	for _, s := range Settings() {
		p("| `%s` | `--%s%s` | %s | %s | %s |\n", s.Key, s.Flag, docArg(s), docDefault(s), s.Reload, mdCell(s.Usage()))
	}
	var reloaded, files []string
	for _, s := range Settings() {
		switch s.Reload {
		case Reloads:
			reloaded = append(reloaded, "`"+s.Key+"`")
		case ReloadsFile:
			files = append(files, "`"+s.Key+"`")
		}
	}
	p("\nA reload (SIGHUP, or a change to the `--config` file) applies %s; it\n", strings.Join(reloaded, ", "))
	p("re-reads the files of %s, which are also re-read when the files\n", strings.Join(files, ", "))
	p("themselves change. Requests already running keep the configuration they\n")
	p("started with. A file that does not parse or validate is refused as a\n")
	p("whole: the guard logs the error and keeps running as it was.\n")
	return b.Flush()
}

func docArg(s Setting) string {
	if s.Kind() == KindBool {
		return ""
	}
	return " " + s.Arg
}

func docDefault(s Setting) string {
	d := s.Default()
	if d == "" {
		return "—"
	}
	return "`" + strings.ReplaceAll(d, ",", ", ") + "`"
}

func mdCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// replaceSettingsReference returns doc with the part between the
// reference's marker lines rewritten.
func replaceSettingsReference(doc []byte) ([]byte, error) {
	i := bytes.Index(doc, []byte(settingsDocBegin))
	j := bytes.Index(doc, []byte(settingsDocEnd))
	if i < 0 || j < i {
		return nil, errors.New("no settings reference markers")
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(settingsDocBegin)])
	out.WriteString("\n")
	if err := writeSettingsReference(&out); err != nil {
		return nil, err
	}
	out.WriteString("\n")
	out.Write(doc[j:])
	return out.Bytes(), nil
}
