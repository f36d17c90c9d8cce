package report

import (
	"bytes"
	"os"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/llmfence/llmfence/internal/service"
)

func TestDisplayWidthIgnoresEscapes(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"critical", 8},
		{"\x1b[1;97;41mcritical\x1b[0m", 8},
		{"\x1b]0;title\x07ab", 2},
		{"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", 4},
		{"緊急", 4},
		{"\x1b[31m緊急\x1b[0m", 4},
		{"a\x1b", 1},
	}
	for _, tt := range tests {
		if got := DisplayWidth(tt.in); got != tt.want {
			t.Errorf("DisplayWidth(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// columnStarts returns the display column where each cell of a grid line
// starts (cells are separated by two or more spaces).
func columnStarts(line string) []int {
	var starts []int
	col, spaces := 0, 2
	for _, r := range StripANSI(line) {
		if r == ' ' {
			spaces++
		} else {
			if spaces >= 2 {
				starts = append(starts, col)
			}
			spaces = 0
		}
		col += DisplayWidth(string(r))
	}
	return starts
}

// TestColouredTableAligns renders the same services with and without
// colour, in English and Japanese: stripped of escape sequences the
// coloured table is the plain one, and every row's columns start where
// the header's do.
func TestColouredTableAligns(t *testing.T) {
	svcs := fixture().Services
	svcs = append(svcs, service.Service{Host: "192.0.2.9", Port: 1, Product: "ollama", Version: "版本",
		Risk: service.SeverityMedium, Findings: []service.Finding{{ID: "X", Title: "日本語のタイトル"}}})
	for _, lang := range []string{"en", "ja"} {
		opts := TableOptions{}
		if lang == "ja" {
			opts.Text = printer(t, "ja")
		}
		var plain, coloured bytes.Buffer
		if err := Table(&plain, svcs, opts); err != nil {
			t.Fatal(err)
		}
		opts.Color = true
		if err := Table(&coloured, svcs, opts); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(coloured.String(), "\x1b[") {
			t.Fatalf("%s: coloured table has no colour", lang)
		}
		if got := StripANSI(coloured.String()); got != plain.String() {
			t.Errorf("%s: coloured table without escapes differs from the plain one:\n%s\n---\n%s", lang, got, plain.String())
		}
		lines := strings.Split(strings.TrimSpace(coloured.String()), "\n")
		head := columnStarts(lines[0])
		// The last line is the summary; the top finding may hold spaces.
		for _, l := range lines[1 : len(lines)-1] {
			got := columnStarts(l)
			if len(got) < len(head)-1 {
				t.Fatalf("%s: row %q has %d columns, header %d", lang, l, len(got), len(head))
			}
			for i := range len(head) - 1 {
				if got[i] != head[i] {
					t.Errorf("%s: column %d of %q starts at %d, header at %d", lang, i, StripANSI(l), got[i], head[i])
				}
			}
		}
	}
}

func TestPlainTextAndCodeSpans(t *testing.T) {
	tests := []struct{ in, plain, html string }{
		{"put `llmfence guard` in front", "put llmfence guard in front", "put <code>llmfence guard</code> in front"},
		{"no code", "no code", "no code"},
		{"a `b` and `c`", "a b and c", "a <code>b</code> and <code>c</code>"},
		{"odd ` one", "odd ` one", "odd ` one"},
		{"`x` then ` alone", "x then ` alone", "<code>x</code> then ` alone"},
		{"`<script>` & <b>", "<script> & <b>", "<code>&lt;script&gt;</code> &amp; &lt;b&gt;"},
	}
	for _, tt := range tests {
		if got := PlainText(tt.in); got != tt.plain {
			t.Errorf("PlainText(%q) = %q, want %q", tt.in, got, tt.plain)
		}
		if got := string(CodeSpansHTML(tt.in)); got != tt.html {
			t.Errorf("CodeSpansHTML(%q) = %q, want %q", tt.in, got, tt.html)
		}
	}
}

func TestTableAndCSVHaveNoBackticks(t *testing.T) {
	r := judgedFixture(t)
	var tb, cb bytes.Buffer
	if err := Table(&tb, r.Services, TableOptions{MaxFinding: 500}); err != nil {
		t.Fatal(err)
	}
	if err := CSV(&cb, r.Services); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"table": tb.String(), "csv": cb.String()} {
		if strings.Contains(out, "`") {
			t.Errorf("%s shows a literal backtick:\n%s", name, out)
		}
	}
	if !strings.Contains(cb.String(), "llmfence guard") {
		t.Errorf("CSV lost the remediation text")
	}
}

// openPTY opens a pseudo-terminal pair (Linux).
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Skipf("unlockpt: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Skipf("ptsname: %v", e)
	}
	s, err := os.OpenFile("/dev/pts/"+itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open the terminal side: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestUseColor(t *testing.T) {
	_, tty := openPTY(t)
	file, err := os.Create(t.TempDir() + "/out")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "NO_COLOR" {
				return v
			}
			return ""
		}
	}
	tests := []struct {
		name string
		w    any
		env  string
		want bool
	}{
		{"terminal", tty, "", true},
		{"terminal NO_COLOR=1", tty, "1", false},
		{"terminal NO_COLOR=0 (any non-empty value)", tty, "0", false},
		{"file", file, "", false},
		{"buffer", &bytes.Buffer{}, "", false},
	}
	for _, tt := range tests {
		w := tt.w.(interface{ Write([]byte) (int, error) })
		if got := UseColor(w, env(tt.env)); got != tt.want {
			t.Errorf("%s: UseColor = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestColumnsAlignsLikeTabwriterButByDisplayWidth: tab-separated rows
// written to Columns line up although one cell is coloured and one holds
// wide characters (text/tabwriter counts both wrong).
func TestColumnsAlignsLikeTabwriterButByDisplayWidth(t *testing.T) {
	var b bytes.Buffer
	c := NewColumns(&b)
	c.Write([]byte("SUITE\tVERDICT\tSEVERITY\tWHY\n"))
	c.Write([]byte("leak\tleaked\t\x1b[1;31mhigh\x1b[0m\tthe prompt came back\n"))
	c.Write([]byte("漢字\tok\tnone\tfine\n"))
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "SUITE  VERDICT  SEVERITY  WHY\n" +
		"leak   leaked   high      the prompt came back\n" +
		"漢字   ok       none      fine\n"
	if got := StripANSI(b.String()); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(b.String(), "\x1b[1;31mhigh\x1b[0m      the") {
		t.Errorf("the colour should wrap the word only, padding after it: %q", b.String())
	}
}
