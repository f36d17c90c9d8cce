package pickle

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Disassemble writes a human-readable listing of the pickle stream(s) in r,
// one opcode per line in the style of Python's pickletools.dis: offset,
// opcode byte, name, operand, indented by MARK depth, with each import's
// classification. It ends with the findings of Scan. Malformed input is
// listed up to the break; the error is only for failures of r or w.
func Disassemble(w io.Writer, r io.Reader, opts Options) error {
	return DisassembleContext(context.Background(), w, r, opts)
}

// DisassembleContext is Disassemble with a context.
func DisassembleContext(ctx context.Context, w io.Writer, r io.Reader, opts Options) error {
	d, err := loaded()
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	m := newMachine(ctx, d, r, opts, 64<<10)
	stream := 0
	m.trace = func(in instr, marks int, note string) {
		if m.streamOps == 1 {
			stream++
			fmt.Fprintf(bw, "--- stream %d at offset %d ---\n", stream, in.off)
		}
		indent := strings.Repeat("    ", min(marks, 16))
		line := fmt.Sprintf("%8d: %-4s %s%-16s %s", in.off, opByte(in.code), indent, in.info.name, operandText(in))
		if note != "" {
			line += "  " + note
		}
		fmt.Fprintln(bw, strings.TrimRight(line, " "))
	}
	m.onBreak = func(b *streamBreak) {
		fmt.Fprintf(bw, "%8d: !! %s\n", b.off, b.msg)
	}
	runErr := m.run(ctx)
	res := m.res
	fmt.Fprintf(bw, "--- %d stream(s), protocol %d, %d opcodes, complete: %t, verdict: %s ---\n", res.Streams, res.Protocol, res.Opcodes, res.Complete, res.Verdict())
	for _, g := range res.Globals {
		fmt.Fprintf(bw, "import %s.%s (%s at %d, %d time(s), called: %t): %s: %s\n", g.Module, g.Name, g.Opcode, g.Offset, g.Count, g.Called, g.Class, g.Reason)
	}
	for _, f := range res.Findings {
		fmt.Fprintf(bw, "%s %s %s: %s: %s\n", f.ID, f.Severity, f.Verdict, f.Title, f.Detail)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing pickle listing: %w", err)
	}
	return runErr
}

func opByte(c op) string {
	if c >= 0x20 && c < 0x7f {
		return string(rune(c))
	}
	return fmt.Sprintf("\\x%02x", byte(c))
}

func operandText(in instr) string {
	a := in.arg
	switch in.info.arg {
	case argNone:
		return ""
	case argU1, argU2, argI4, argU4, argU8:
		return strconv.FormatInt(a.n, 10)
	case argF8:
		return strconv.FormatFloat(a.f, 'g', -1, 64)
	case argIntLine, argFloatLine, argMemoLine:
		if t := strings.TrimSpace(a.text); len(t) <= 60 && strconv.CanBackquote(t) && !strings.ContainsAny(t, "`\"") {
			return t
		}
		return shorten(a.text, true)
	case argTwoLines:
		return shorten(a.s, a.full) + " " + shorten(a.name, a.full2)
	case argStr1, argStr4, argStr4U, argStr8:
		if in.code == opLong1 || in.code == opLong4 {
			return fmt.Sprintf("(%d-byte integer)", a.length)
		}
		if !isStrOp(in.code) {
			return fmt.Sprintf("%s (%d bytes)", shorten(a.s, a.full), a.length)
		}
		if !a.full {
			return fmt.Sprintf("%s (%d bytes)", shorten(a.s, false), a.length)
		}
		return shorten(a.s, true)
	}
	return shorten(a.s, a.full)
}

// shorten quotes s for display, cut to 60 bytes.
func shorten(s string, full bool) string {
	if len(s) > 60 {
		s, full = s[:60], false
	}
	q := strconv.Quote(s)
	if !full {
		q += "..."
	}
	return q
}
