package locale

import (
	"strings"
	"unicode"

	"golang.org/x/text/width"
)

// RuneWidth is the number of terminal columns a rune takes: 2 for East
// Asian wide and full-width characters (漢字, かな, full-width forms), 0
// for combining marks and format characters, 1 for everything else.
// Ambiguous characters (…, ×) count 1, as most terminals draw them.
func RuneWidth(r rune) int {
	switch {
	case r == 0, unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf):
		return 0
	case r < 0x1100:
		return 1 // fast path: nothing below U+1100 is wide
	}
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	return 1
}

// Width is the number of terminal columns s takes.
func Width(s string) int {
	n := 0
	for _, r := range s {
		n += RuneWidth(r)
	}
	return n
}

// Truncate shortens s to at most w columns, marking a cut with "…". It
// never splits a wide character: the cut falls before it.
func Truncate(s string, w int) string {
	if Width(s) <= w {
		return s
	}
	if w <= 1 {
		return "…"
	}
	var b strings.Builder
	used := 0
	for _, r := range s {
		rw := RuneWidth(r)
		if used+rw > w-1 {
			break
		}
		b.WriteRune(r)
		used += rw
	}
	return b.String() + "…"
}

// PadRight pads s with spaces to w columns; s wider than w is returned
// unchanged.
func PadRight(s string, w int) string {
	if n := Width(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

// PadLeft pads s on the left with spaces to w columns.
func PadLeft(s string, w int) string {
	if n := Width(s); n < w {
		return strings.Repeat(" ", w-n) + s
	}
	return s
}
