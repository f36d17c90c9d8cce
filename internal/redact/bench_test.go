package redact

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mixedText is size bytes of chat: English and Japanese prose, code, a
// table, numbers that are not personal data, and the transcript's secrets
// (about 4 KiB) every dense-th part.
func mixedText(tb testing.TB, size, dense int) string {
	tb.Helper()
	tr, err := os.ReadFile(filepath.Join("testdata", "transcript.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	prose := []string{
		"The quarterly report shows revenue of 1,234,567 units, up 12.5% on last year; see section 4.2.\n",
		"func main() { for i := 0; i < 10; i++ { fmt.Println(i, time.Now().Unix()) } } // v1.22.3\n",
		"会議は明日の午前10時からです。資料は共有フォルダにあります。よろしくお願いします。\n",
		"Please summarise the following meeting notes and list the action items with owners and dates.\n",
		"| id | name | qty |\n|----|------|-----|\n| 17 | bolt | 200 |\n| 18 | nut  | 350 |\n",
	}
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		if i%dense == dense-1 {
			b.Write(tr)
		} else {
			b.WriteString(prose[i%len(prose)])
		}
	}
	return b.String()[:size]
}

func benchRedact(b *testing.B, in string) {
	r := newT(b)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		r.Redact(in)
	}
}

// BenchmarkRedact16K: 16 KiB of chat with the transcript's 30 secrets in
// it once.
func BenchmarkRedact16K(b *testing.B) { benchRedact(b, mixedText(b, 16<<10, 100)) }

// BenchmarkRedact16KDense: the worst case, secrets on most lines.
func BenchmarkRedact16KDense(b *testing.B) { benchRedact(b, mixedText(b, 16<<10, 2)) }

// BenchmarkRedact16KClean: nothing to redact.
func BenchmarkRedact16KClean(b *testing.B) { benchRedact(b, mixedText(b, 16<<10, 1<<30)) }
