package locale

import (
	"fmt"
	"strings"

	"golang.org/x/text/language"
)

// Lang is a language llmfence speaks.
type Lang string

const (
	English  Lang = "en"
	Japanese Lang = "ja"
)

// Langs lists the languages every message must have, English first.
var Langs = []Lang{English, Japanese}

// Tag is the BCP 47 tag of the language.
func (l Lang) Tag() language.Tag {
	if l == Japanese {
		return language.Japanese
	}
	return language.English
}

// ParseLang reads a --lang value: "en" or "ja", in any case, also with a
// region or encoding ("ja-JP", "ja_JP.UTF-8", "en_US").
func ParseLang(s string) (Lang, error) {
	if l, ok := fromLocaleName(s); ok {
		return l, nil
	}
	return "", fmt.Errorf("language %q: want en or ja", s)
}

// fromLocaleName maps a POSIX locale name or a language tag to a
// language: "ja_JP.UTF-8" and "ja-JP" are Japanese; "C", "POSIX" and
// every English locale are English. ok is false for anything else.
func fromLocaleName(s string) (Lang, bool) {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, ".@"); i >= 0 {
		s = s[:i] // encoding and modifier: ja_JP.UTF-8, en_US@euro
	}
	s = strings.ToLower(strings.ReplaceAll(s, "_", "-"))
	base, _, _ := strings.Cut(s, "-")
	switch {
	case base == "ja":
		return Japanese, true
	case base == "en", s == "c", s == "posix":
		return English, true
	}
	return "", false
}

// FromEnv picks the language the way POSIX programs choose the language of
// their messages: the first of LC_ALL, LC_MESSAGES and LANG that is set
// decides. Japanese locales give Japanese; everything else, and nothing
// set, gives English, the language every message has.
func FromEnv(getenv func(string) string) Lang {
	for _, name := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			continue
		}
		if l, ok := fromLocaleName(v); ok {
			return l
		}
		return English
	}
	return English
}

// FromAcceptLanguage picks the language a browser prefers (an HTTP
// Accept-Language header, quality values honoured) among English and
// Japanese; ok is false when it names neither.
func FromAcceptLanguage(header string) (lang Lang, ok bool) {
	tags, _, err := language.ParseAcceptLanguage(header)
	if err != nil {
		return English, false
	}
	for _, t := range tags { // sorted by quality, highest first
		if l, ok := fromLocaleName(t.String()); ok && t.String() != "c" {
			return l, true
		}
	}
	return English, false
}
