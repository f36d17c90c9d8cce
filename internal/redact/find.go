package redact

import (
	"strings"
)

// Match is one span Redact would replace.
type Match struct {
	// ID is the pattern's ID; Category is CategorySecret or CategoryPII;
	// Label is the replacement label.
	ID, Category, Label string
	// Start and End are byte offsets in the text searched.
	Start, End int
}

// Find returns, in order, the spans the first pass of Redact replaces in s,
// without building the redacted text: the counting path for scanners that
// report where personal data and secrets are (datascan) rather than remove
// them. Redact may replace a little more than Find reports, when a
// replacement uncovers a match an overlapping candidate hid.
func (r *Redactor) Find(s string) []Match {
	spans := r.find(s, []region{{0, len(s)}}, !r.plain)
	if len(spans) == 0 {
		return nil
	}
	out := make([]Match, len(spans))
	for i, sp := range spans {
		e := r.entries[sp.entry]
		out[i] = Match{ID: e.ID, Category: e.Category, Label: e.Replacement, Start: sp.start, End: sp.end}
	}
	return out
}

// Category returns the category of a pattern ID ("" when unknown).
func (r *Redactor) Category(id string) string {
	for _, e := range r.entries {
		if e.ID == id {
			return e.Category
		}
	}
	return ""
}

// Marker returns the text a match of pattern id is replaced by.
func (r *Redactor) Marker(id string) string {
	for _, e := range r.entries {
		if e.ID == id {
			return e.marker
		}
	}
	return ""
}

// Scanner finds matches in text that arrives in pieces, with memory
// bounded by its window: text is searched a block at a time, a block
// ending at a blank line (or, past the window, at a line end; past twice
// the window, anywhere), so a match is found unless it spans a cut:
// only PEM blocks and text without line ends can. Offsets are counted from
// the first byte written.
type Scanner struct {
	r      *Redactor
	window int
	buf    []byte
	base   int64
	emit   func(Match, int64)
}

// NewScanner returns a Scanner that calls emit with each match and the
// absolute offset of its start; window is the text held at most (0: 64
// KiB).
func (r *Redactor) NewScanner(window int, emit func(m Match, offset int64)) *Scanner {
	if window <= 0 {
		window = 64 << 10
	}
	return &Scanner{r: r, window: window, emit: emit}
}

// Write adds text. It never fails.
func (sc *Scanner) Write(p []byte) (int, error) {
	sc.buf = append(sc.buf, p...)
	for len(sc.buf) >= sc.window {
		cut := strings.LastIndex(string(sc.buf[:sc.window]), "\n\n")
		if cut < 0 {
			cut = strings.LastIndexByte(string(sc.buf[:sc.window]), '\n')
		}
		if cut < 0 {
			if len(sc.buf) < 2*sc.window {
				break
			}
			cut = sc.window - 1
		}
		sc.search(cut + 1)
	}
	return len(p), nil
}

// Close searches what is left.
func (sc *Scanner) Close() error {
	if len(sc.buf) > 0 {
		sc.search(len(sc.buf))
	}
	return nil
}

func (sc *Scanner) search(n int) {
	for _, m := range sc.r.Find(string(sc.buf[:n])) {
		sc.emit(m, sc.base+int64(m.Start))
	}
	sc.base += int64(n)
	sc.buf = append(sc.buf[:0], sc.buf[n:]...)
}
