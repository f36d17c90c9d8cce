package gibberish

import (
	"testing"
	"unicode/utf8"
)

// FuzzScore: any bytes score within [0, 1]; a turn lies inside the text on
// rune boundaries; the stream fed in two pieces agrees with the stream fed
// whole.
func FuzzScore(f *testing.F) {
	for _, s := range []string{"", "hello world", "日本語\xe3\x81", "\xff\xfe <SUDO> ocks Mumbai externalToEVA", "a\u0301b\u200dc 🧟\u200d♀️"} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, cut int) {
		r := Score(s)
		if r.Score < 0 || r.Score > 1 || r.Score != r.Score {
			t.Fatalf("score %v", r.Score)
		}
		Default().Screen(s)
		if turn, ok := FindTurn(s); ok {
			if turn.Offset < 0 || turn.End > len(s) || turn.Offset >= turn.End {
				t.Fatalf("turn %+v in %d bytes", turn, len(s))
			}
			if utf8.ValidString(s) && (!utf8.RuneStart(s[turn.Offset]) || turn.End < len(s) && !utf8.RuneStart(s[turn.End])) {
				t.Fatalf("turn %+v not on rune boundaries", turn)
			}
		}
		whole := NewStream()
		whole.WriteString(s)
		whole.Close()
		if cut < 0 {
			cut = -cut
		}
		cut %= len(s) + 1
		two := NewStream()
		two.Write([]byte(s[:cut]))
		two.WriteString(s[cut:])
		two.Close()
		if a, b := whole.Status(), two.Status(); a != b {
			t.Fatalf("split at %d: %+v != %+v", cut, b, a)
		}
	})
}

// FuzzLoad: Load never panics, and what it accepts marshals back.
func FuzzLoad(f *testing.F) {
	data, _ := Default().MarshalBinary()
	f.Add(data[:200])
	f.Add([]byte("LFGB\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Load(b)
		if err != nil {
			return
		}
		if _, err := m.MarshalBinary(); err != nil {
			t.Fatal(err)
		}
		m.Score("some text to score")
	})
}
