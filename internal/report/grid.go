package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/llmfence/llmfence/internal/locale"
)

// A grid is a terminal table: rows of cells, columns aligned by display
// width. Every table llmfence prints (scan results, runs, hosts,
// findings, keys, usage, captures, vulnerability data) goes through it,
// so one rule decides alignment: a cell's width is the number of
// terminal columns it takes, measured without ANSI escape sequences
// (colour codes take no column) and with East Asian wide characters
// counting two (internal/locale).

// cell is one grid cell: its text and, optionally, the ANSI colour it is
// painted with. The colour wraps the text only, never the padding.
type cell struct {
	text  string
	color string
}

// gridWriter collects rows and writes them aligned.
type gridWriter struct {
	rows [][]cell
}

func (g *gridWriter) header(cols ...string) {
	row := make([]cell, len(cols))
	for i, c := range cols {
		row[i] = cell{text: c}
	}
	g.rows = append(g.rows, row)
}

// row appends a row of plain cells.
func (g *gridWriter) row(cols ...string) {
	g.header(cols...)
}

// cells appends a row of cells.
func (g *gridWriter) cells(row ...cell) {
	g.rows = append(g.rows, row)
}

// render lays the rows out. The last column is not padded (no trailing
// spaces).
func (g *gridWriter) render(b *strings.Builder) {
	var widths []int
	for _, row := range g.rows {
		for i, c := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], DisplayWidth(c.text))
		}
	}
	for _, row := range g.rows {
		var line strings.Builder
		for i, c := range row {
			last := i == len(row)-1
			pad := widths[i] - DisplayWidth(c.text)
			if c.color != "" {
				line.WriteString(c.color + c.text + colorReset)
			} else {
				line.WriteString(c.text)
			}
			if !last {
				line.WriteString(strings.Repeat(" ", pad+columnGap))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
}

// write renders the grid to w.
func (g *gridWriter) write(w io.Writer, what string) error {
	var b strings.Builder
	g.render(&b)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing the %s: %w", what, err)
	}
	return nil
}

// DisplayWidth is the number of terminal columns s takes when printed:
// ANSI escape sequences (CSI such as colours, OSC such as titles) take
// none, East Asian wide and full-width characters two, combining marks
// none.
func DisplayWidth(s string) int {
	return locale.Width(StripANSI(s))
}

// StripANSI removes ANSI escape sequences from s: CSI sequences
// (ESC [ ... final byte, e.g. colours), OSC sequences (ESC ] ... BEL or
// ESC \) and two-byte escapes.
func StripANSI(s string) string {
	if !strings.ContainsRune(s, 0x1b) && !strings.ContainsRune(s, 0x9b) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != 0x1b {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(s) {
			break
		}
		switch s[i+1] {
		case '[': // CSI: parameters and intermediates, then a final byte 0x40-0x7e
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = min(j+1, len(s))
		case ']': // OSC: up to BEL or ST (ESC \)
			j := i + 2
			for j < len(s) && s[j] != 0x07 && !(s[j] == 0x1b && j+1 < len(s) && s[j+1] == '\\') {
				j++
			}
			switch {
			case j >= len(s):
				i = len(s)
			case s[j] == 0x07:
				i = j + 1
			default:
				i = j + 2
			}
		default:
			i += 2
		}
	}
	return b.String()
}

// Columns is a drop-in for text/tabwriter in the terminal tables of
// other renderers (internal/probe/report): cells are separated by tabs
// and rows by newlines, as with tabwriter, but columns are aligned by
// display width (ANSI colour codes take no column, wide characters two)
// with two spaces between them, and trailing spaces are trimmed. Write
// buffers; Flush lays the rows out.
type Columns struct {
	w   io.Writer
	buf strings.Builder
}

// NewColumns returns a Columns writing to w.
func NewColumns(w io.Writer) *Columns { return &Columns{w: w} }

// Write buffers p.
func (c *Columns) Write(p []byte) (int, error) { return c.buf.Write(p) }

// Flush writes the buffered rows, aligned, and empties the buffer.
func (c *Columns) Flush() error {
	text := strings.TrimSuffix(c.buf.String(), "\n")
	c.buf.Reset()
	if text == "" {
		return nil
	}
	g := gridWriter{}
	for _, line := range strings.Split(text, "\n") {
		g.row(strings.Split(line, "\t")...)
	}
	return g.write(c.w, "table")
}
