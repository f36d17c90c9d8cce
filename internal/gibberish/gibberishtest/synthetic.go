package gibberishtest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"unicode"
)

// Words returns the words (letters only, 2 to 20 of them) of docs in
// order, repeats included: drawing from it uniformly draws words as often
// as text uses them.
func Words(docs []Doc) []string {
	var out []string
	for _, d := range docs {
		for _, f := range strings.FieldsFunc(d.Text, func(r rune) bool { return !unicode.IsLetter(r) }) {
			if n := len([]rune(f)); n >= 2 && n <= 20 {
				out = append(out, f)
			}
		}
	}
	return out
}

// phrase returns n consecutive words of words from a random place.
func phrase(r *rand.Rand, words []string, n int) string {
	i := r.IntN(max(1, len(words)-n))
	return strings.Join(words[i:min(len(words), i+n)], " ")
}

// Table returns a table of rows rows in one of the layouts clean data
// holds (Markdown, CSV, TSV, aligned columns). Each column has a type as
// real tables do: numbers, dates, a small set of categories, or short
// phrases of real text.
func Table(r *rand.Rand, words []string, rows int) string {
	cols := 2 + r.IntN(4)
	kinds := make([]int, cols)
	cats := make([][]string, cols)
	for c := range kinds {
		kinds[c] = r.IntN(5)
		for range 2 + r.IntN(6) {
			cats[c] = append(cats[c], phrase(r, words, 1+r.IntN(2)))
		}
	}
	cell := func(c int) string {
		switch kinds[c] {
		case 0:
			return fmt.Sprint(r.IntN(100000))
		case 1:
			return fmt.Sprintf("%.2f", r.Float64()*1000)
		case 2:
			return fmt.Sprintf("20%02d-%02d-%02d", r.IntN(30), 1+r.IntN(12), 1+r.IntN(28))
		case 3:
			return cats[c][r.IntN(len(cats[c]))]
		}
		return phrase(r, words, 1+r.IntN(4))
	}
	var b strings.Builder
	switch r.IntN(4) {
	case 0: // Markdown
		for i := range rows {
			b.WriteString("|")
			for c := range cols {
				b.WriteString(" " + cell(c) + " |")
			}
			b.WriteString("\n")
			if i == 0 {
				b.WriteString("|" + strings.Repeat("---|", cols) + "\n")
			}
		}
	case 1, 2: // CSV, TSV
		sep := ","
		if r.IntN(2) == 0 {
			sep = "\t"
		}
		for range rows {
			for c := range cols {
				if c > 0 {
					b.WriteString(sep)
				}
				b.WriteString(cell(c))
			}
			b.WriteString("\n")
		}
	default: // aligned
		for range rows {
			for c := range cols {
				fmt.Fprintf(&b, "%-18s", cell(c))
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// List returns a bulleted or numbered list, or a key: value block, whose
// items are phrases of real text.
func List(r *rand.Rand, words []string, items int) string {
	var b strings.Builder
	style := r.IntN(4)
	for i := range items {
		p := phrase(r, words, 1+r.IntN(8))
		switch style {
		case 0:
			b.WriteString("- " + p + "\n")
		case 1:
			fmt.Fprintf(&b, "%d. %s\n", i+1, p)
		case 2:
			k, v, _ := strings.Cut(p, " ")
			fmt.Fprintf(&b, "%s: %s\n", strings.ToLower(k), v)
		default:
			fmt.Fprintf(&b, "  * %s\n", p)
		}
	}
	return b.String()
}
