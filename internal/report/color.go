package report

import (
	"io"
	"os"

	"golang.org/x/term"
)

// UseColor decides whether a table written to w may be painted with ANSI
// colours: only when w is a terminal and the NO_COLOR environment
// variable is unset or empty (https://no-color.org: any non-empty value
// disables colour). getenv is os.Getenv in production; nil means
// os.Getenv. Machine-readable formats never carry colour whatever this
// says.
func UseColor(w io.Writer, getenv func(string) string) bool {
	if getenv == nil {
		getenv = os.Getenv
	}
	if getenv("NO_COLOR") != "" {
		return false
	}
	return IsTerminal(w)
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
