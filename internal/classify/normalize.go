package classify

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Normalize returns the form of text the rules match against: Unicode NFKC
// (full-width letters and digits become ASCII, half-width katakana become
// full-width), lower case, format characters such as zero-width spaces
// removed, curly quotes and dashes made ASCII, carriage returns turned into
// line breaks and runs of other white space collapsed to one space.
func Normalize(text string) string {
	text = norm.NFKC.String(text)
	var b strings.Builder
	b.Grow(len(text))
	space := false
	for _, r := range text {
		switch {
		case r == '\r' || r == '\n':
			b.WriteByte('\n')
			space = false
			continue
		case unicode.IsSpace(r):
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		case unicode.Is(unicode.Cf, r):
			continue
		}
		space = false
		switch r {
		case '\u2018', '\u2019', '\u201b', '\u2032', '`', '\u00b4':
			r = '\''
		case '\u201c', '\u201d', '\u201f', '\u2033':
			r = '"'
		case '\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2212':
			r = '-'
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
