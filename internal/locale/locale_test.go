package locale

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func mapFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return fsys
}

func load(t *testing.T, files map[string]string) *Catalogue {
	t.Helper()
	c, err := NewCatalogue(func(b *Builder) error { return b.LoadFS(mapFS(files), "*.yaml") })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const enGood = `
greeting: "Hello, {{.name}}"
models:
  one: "{{.count}} model"
  other: "{{.count}} models"
nested:
  fix:
    ollama: "Bind OLLAMA_HOST to 127.0.0.1:{{.port}}"
cve:
  title: "Probllama"
detail: "{{.cve}}: {{.title}}"
`

const jaGood = `
greeting: "こんにちは、{{.name}} さん"
models: "{{.count}} 個のモデル"
nested:
  fix:
    ollama: "OLLAMA_HOST を 127.0.0.1:{{.port}} にバインドしてください"
cve:
  title: "Probllama（パストラバーサル）"
detail: "{{.cve}}: {{.title}}"
`

func TestCheckAcceptsACompleteCatalogue(t *testing.T) {
	c := load(t, map[string]string{"m.en.yaml": enGood, "m.ja.yaml": jaGood})
	if err := c.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if got := c.IDs(Japanese); strings.Join(got, " ") != "cve.title detail greeting models nested.fix.ollama" {
		t.Errorf("IDs = %v", got)
	}
}

// TestCheckFindsEveryProblem: each broken catalogue fails Check with the
// problem named.
func TestCheckFindsEveryProblem(t *testing.T) {
	tests := []struct {
		name, en, ja, want string
	}{
		{"missing in Japanese", `a: "x"` + "\n" + `b: "y"`, `a: "ja"`, `"b" (defined by m.en.yaml) has no ja text`},
		{"missing in English", `a: "x"`, `a: "ja"` + "\n" + `c: "z"`, `"c" (defined by m.ja.yaml) has no en text`},
		{"placeholder renamed", `a: "port {{.port}}"`, `a: "ポート {{.Port}}"`, `placeholders differ: en has [port], ja has [Port]`},
		{"placeholder dropped", `a: "{{.product}} {{.version}}"`, `a: "{{.product}}"`, `placeholders differ`},
		{"count without singular", `a: "{{.count}} models"`, `a: "{{.count}} 個"`, `takes a count but has no "one" form`},
		{"plural form lacks other", "a:\n  one: \"{{.count}} model\"", `a: "{{.count}} 個"`, `has no "other" form`},
		{"does not render", `a: "{{.x | nosuchfunc}}"`, `a: "{{.x}}"`, `function "nosuchfunc" not defined`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewCatalogue(func(b *Builder) error {
				return b.LoadFS(mapFS(map[string]string{"m.en.yaml": tt.en, "m.ja.yaml": tt.ja}), "*.yaml")
			})
			if err == nil {
				err = c.Check()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestCatalogueRefusesDuplicatesAndUnknownLanguages(t *testing.T) {
	_, err := NewCatalogue(func(b *Builder) error {
		return b.LoadFS(mapFS(map[string]string{"a.en.yaml": `x: "1"`, "b.en.yaml": `x: "2"`}), "*.yaml")
	})
	if err == nil || !strings.Contains(err.Error(), `"x" (en) is already defined by a.en.yaml`) {
		t.Errorf("duplicate: %v", err)
	}
	_, err = NewCatalogue(func(b *Builder) error {
		return b.LoadFS(mapFS(map[string]string{"a.fr.yaml": `x: "1"`}), "*.yaml")
	})
	if err == nil || !strings.Contains(err.Error(), `language "fr"`) {
		t.Errorf("French file: %v", err)
	}
	_, err = NewCatalogue(func(b *Builder) error {
		return b.LoadFS(mapFS(map[string]string{"a.en.yaml": `x: "{{.port"`}), "*.yaml")
	})
	if err == nil {
		t.Errorf("a broken template was accepted")
	}
}

func TestPrinter(t *testing.T) {
	c := load(t, map[string]string{"m.en.yaml": enGood + "\nonly_en: \"English only\"\n", "m.ja.yaml": jaGood})
	en, ja := c.Printer(English), c.Printer(Japanese)
	tests := []struct {
		p    *Printer
		id   string
		kv   []string
		want string
	}{
		{en, "greeting", []string{"name", "Alice"}, "Hello, Alice"},
		{ja, "greeting", []string{"name", "Alice"}, "こんにちは、Alice さん"},
		{en, "models", []string{"count", "1"}, "1 model"},
		{en, "models", []string{"count", "3"}, "3 models"},
		{ja, "models", []string{"count", "1"}, "1 個のモデル"},
		{ja, "nested.fix.ollama", []string{"port", "11434"}, "OLLAMA_HOST を 127.0.0.1:11434 にバインドしてください"},
		// K_msg: the Japanese text of the named message replaces K; English keeps K.
		{ja, "detail", []string{"cve", "CVE-2024-37032", "title", "Probllama — digest path traversal", "title_msg", "cve.title"}, "CVE-2024-37032: Probllama（パストラバーサル）"},
		{en, "detail", []string{"cve", "CVE-2024-37032", "title", "Probllama — digest path traversal", "title_msg", "cve.title"}, "CVE-2024-37032: Probllama — digest path traversal"},
		{ja, "detail", []string{"cve", "X-1", "title", "imported title", "title_msg", "no.such.message"}, "X-1: imported title"},
		// The named message takes its own arguments from K.NAME.
		{ja, "detail", []string{"cve", "X-2", "title", "Bind OLLAMA_HOST to 127.0.0.1:11434", "title_msg", "nested.fix.ollama", "title.port", "11434"}, "X-2: OLLAMA_HOST を 127.0.0.1:11434 にバインドしてください"},
		// Fallbacks: English when Japanese lacks it; the ID when nobody has it.
		{ja, "only_en", nil, "English only"},
		{ja, "no.such.message", nil, "no.such.message"},
		// A missing argument is an error, shown as the ID, never "<no value>".
		{en, "greeting", nil, "greeting"},
	}
	for _, tt := range tests {
		if got := tt.p.T(tt.id, tt.kv...); got != tt.want {
			t.Errorf("%s T(%q, %v) = %q, want %q", tt.p.Lang(), tt.id, tt.kv, got, tt.want)
		}
	}
	var nilPrinter *Printer
	if nilPrinter.Lang() != English || nilPrinter.T("x") != "x" {
		t.Errorf("nil printer")
	}
}

func TestLanguageChoice(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	tests := []struct {
		getenv func(string) string
		want   Lang
	}{
		{env(), English},
		{env("LANG", "ja_JP.UTF-8"), Japanese},
		{env("LANG", "ja_JP.eucJP"), Japanese},
		{env("LANG", "en_US.UTF-8"), English},
		{env("LANG", "C.UTF-8"), English},
		{env("LANG", "de_DE.UTF-8"), English},
		{env("LC_MESSAGES", "ja_JP.UTF-8", "LANG", "en_US.UTF-8"), Japanese},
		{env("LC_ALL", "C", "LC_MESSAGES", "ja_JP.UTF-8"), English},
		{env("LC_ALL", "ja", "LANG", "en_US.UTF-8"), Japanese},
		{env("LC_ALL", "", "LANG", "ja_JP.UTF-8"), Japanese},
	}
	for i, tt := range tests {
		if got := FromEnv(tt.getenv); got != tt.want {
			t.Errorf("case %d: FromEnv = %s, want %s", i, got, tt.want)
		}
	}
	for in, want := range map[string]Lang{"en": English, "ja": Japanese, "JA": Japanese, "ja-JP": Japanese, "ja_JP.UTF-8": Japanese, "en_GB": English} {
		if got, err := ParseLang(in); err != nil || got != want {
			t.Errorf("ParseLang(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "fr", "japanese", "jp"} {
		if _, err := ParseLang(in); err == nil {
			t.Errorf("ParseLang(%q) succeeded", in)
		}
	}
}

func TestDates(t *testing.T) {
	c := load(t, map[string]string{"m.en.yaml": `a: "x"`, "m.ja.yaml": `a: "y"`})
	en, ja := c.Printer(English), c.Printer(Japanese)
	at := time.Date(2025, 3, 4, 19, 5, 6, 0, time.FixedZone("JST", 9*3600))
	for _, tt := range []struct{ got, want string }{
		{en.Date(at), "2025-03-04"},
		{ja.Date(at), "2025年3月4日"},
		{en.DateTime(at), "2025-03-04 10:05:06 UTC"},
		{ja.DateTime(at), "2025年3月4日 10:05:06 UTC"},
		{ja.DateString("2026-12-06"), "2026年12月6日"},
		{ja.DateString("not a date"), "not a date"},
		{en.Duration(95 * time.Second), "1m35s"},
		{ja.Duration(95 * time.Second), "1分35秒"},
		{ja.Duration(2*time.Hour + 3*time.Second), "2時間3秒"},
		{ja.Duration(0), "0秒"},
		{en.Date(time.Time{}), "—"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestWidth(t *testing.T) {
	for _, tt := range []struct {
		s string
		w int
	}{
		{"ollama", 6},
		{"認証なし", 8},
		{"ｶﾀｶﾅ", 4},       // half-width katakana: one column each
		{"ＡＢ", 4},         // full-width Latin
		{"e\u0301", 1},    // combining accent takes no column
		{"a\u200bb", 2},   // zero-width space
		{"…×", 2},         // ambiguous: one column
		{"高リスク high", 13}, // mixed
	} {
		if got := Width(tt.s); got != tt.w {
			t.Errorf("Width(%q) = %d, want %d", tt.s, got, tt.w)
		}
	}
	for _, tt := range []struct {
		s    string
		w    int
		want string
	}{
		{"認証なしで到達可能", 9, "認証なし…"},
		{"認証なしで到達可能", 10, "認証なし…"},
		{"認証なしで到達可能", 18, "認証なしで到達可能"},
		{"abcdef", 4, "abc…"},
		{"abc", 1, "…"},
	} {
		got := Truncate(tt.s, tt.w)
		if got != tt.want || Width(got) > tt.w {
			t.Errorf("Truncate(%q, %d) = %q (width %d), want %q", tt.s, tt.w, got, Width(got), tt.want)
		}
	}
	if got := PadRight("高", 4) + "|"; got != "高  |" {
		t.Errorf("PadRight = %q", got)
	}
	if got := PadLeft("高", 3); got != " 高" {
		t.Errorf("PadLeft = %q", got)
	}
}

func FuzzTruncate(f *testing.F) {
	for _, s := range []string{"認証なしで到達可能", "abc", "e\u0301\u0301x", "ｶﾀｶﾅ漢字"} {
		f.Add(s, 5)
	}
	f.Fuzz(func(t *testing.T, s string, w int) {
		if w < 0 || w > 1000 {
			return
		}
		got := Truncate(s, w)
		if Width(s) <= w && got != s {
			t.Fatalf("Truncate changed a string that fits: %q -> %q", s, got)
		}
		if Width(s) > w && Width(got) > max(w, 1) {
			t.Fatalf("Truncate(%q, %d) = %q is %d columns wide", s, w, got, Width(got))
		}
	})
}

func TestFromAcceptLanguage(t *testing.T) {
	for _, tt := range []struct {
		header string
		want   Lang
		ok     bool
	}{
		{"ja,en-US;q=0.9,en;q=0.8", Japanese, true},
		{"en-US,en;q=0.9,ja;q=0.8", English, true},
		{"fr-FR,fr;q=0.9,ja;q=0.5", Japanese, true},
		{"en;q=0.2,ja-JP;q=0.8", Japanese, true},
		{"de-DE", English, false},
		{"", English, false},
		{"%%%", English, false},
	} {
		got, ok := FromAcceptLanguage(tt.header)
		if got != tt.want || ok != tt.ok {
			t.Errorf("FromAcceptLanguage(%q) = %s, %v; want %s, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}
