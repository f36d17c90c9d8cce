package datascan

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSON reader is hand-written rather than encoding/json: it must hand
// on a string of any length (a 10 GB line) in bounded segments, report
// byte offsets, keep going after a bad line, and copy the input to a
// redacted output byte for byte except for the strings it rewrites. It
// accepts what RFC 8259 accepts, bounds nesting (maxDepth) and key length,
// and never trusts a length it has not read.

const (
	maxDepth   = 128
	maxKeyLen  = 4096
	maxPathLen = 16
)

// errSyntax is a JSON syntax error at an offset.
type errSyntax struct {
	off int64
	msg string
}

func (e *errSyntax) Error() string { return fmt.Sprintf("invalid JSON at byte %d: %s", e.off, e.msg) }

type pathElem struct {
	key   string
	index int // -1 for an object key
}

// jsonScanner reads JSON values from r.
type jsonScanner struct {
	r   *bufio.Reader
	off int64
	out *bufio.Writer // redacted copy; nil: none
	// redact rewrites a string segment for out.
	redact   func(string) string
	maxField int
	path     []pathElem
	buf      []byte
	// onString receives each string value's decoded text in segments of
	// at most maxField bytes; off is the offset of the segment's first
	// byte of source (inside the quotes).
	onString func(path []pathElem, text []byte, off int64)
	// onKey is told each object key (for schema detection).
	onKey func(path []pathElem, key string)
}

func (j *jsonScanner) syntax(msg string) error { return &errSyntax{off: j.off, msg: msg} }

func (j *jsonScanner) readByte() (byte, error) {
	c, err := j.r.ReadByte()
	if err != nil {
		if err == io.EOF {
			return 0, io.ErrUnexpectedEOF
		}
		return 0, err
	}
	j.off++
	if j.out != nil {
		j.out.WriteByte(c)
	}
	return c, nil
}

// skipSpace reads past whitespace and returns the next byte unread
// (io.EOF at the end).
func (j *jsonScanner) skipSpace() (byte, error) {
	for {
		c, err := j.r.ReadByte()
		if err != nil {
			return 0, err
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			j.off++
			if j.out != nil {
				j.out.WriteByte(c)
			}
			continue
		}
		j.r.UnreadByte()
		return c, nil
	}
}

// value reads one value.
func (j *jsonScanner) value() error {
	c, err := j.skipSpace()
	if err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	switch {
	case c == '{':
		return j.object()
	case c == '[':
		return j.array()
	case c == '"':
		j.readByte()
		return j.str(false)
	case c == '-' || c >= '0' && c <= '9':
		return j.number()
	case c == 't':
		return j.literal("true")
	case c == 'f':
		return j.literal("false")
	case c == 'n':
		return j.literal("null")
	}
	return j.syntax(fmt.Sprintf("unexpected %q", c))
}

func (j *jsonScanner) literal(lit string) error {
	for i := range len(lit) {
		c, err := j.readByte()
		if err != nil {
			return err
		}
		if c != lit[i] {
			return j.syntax("bad literal")
		}
	}
	return nil
}

func (j *jsonScanner) number() error {
	n := 0
	for {
		c, err := j.r.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if !(c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			j.r.UnreadByte()
			break
		}
		j.off++
		if j.out != nil {
			j.out.WriteByte(c)
		}
		if n++; n > 1024 {
			return j.syntax("number too long")
		}
	}
	return nil
}

func (j *jsonScanner) object() error {
	j.readByte() // '{'
	if len(j.path) >= maxDepth {
		return j.syntax("nested too deeply")
	}
	c, err := j.skipSpace()
	if err != nil {
		return unexpected(err)
	}
	if c == '}' {
		j.readByte()
		return nil
	}
	for {
		c, err := j.skipSpace()
		if err != nil {
			return unexpected(err)
		}
		if c != '"' {
			return j.syntax("expected a key")
		}
		j.readByte()
		if err := j.str(true); err != nil {
			return err
		}
		key := string(j.buf)
		if len(j.path) >= maxPathLen {
			key = ""
		}
		if j.onKey != nil {
			j.onKey(j.path, key)
		}
		if c, err = j.skipSpace(); err != nil {
			return unexpected(err)
		}
		if c != ':' {
			return j.syntax("expected ':'")
		}
		j.readByte()
		j.path = append(j.path, pathElem{key: key, index: -1})
		err = j.value()
		j.path = j.path[:len(j.path)-1]
		if err != nil {
			return err
		}
		if c, err = j.skipSpace(); err != nil {
			return unexpected(err)
		}
		j.readByte()
		switch c {
		case ',':
			continue
		case '}':
			return nil
		}
		return j.syntax("expected ',' or '}'")
	}
}

func (j *jsonScanner) array() error {
	j.readByte() // '['
	if len(j.path) >= maxDepth {
		return j.syntax("nested too deeply")
	}
	c, err := j.skipSpace()
	if err != nil {
		return unexpected(err)
	}
	if c == ']' {
		j.readByte()
		return nil
	}
	for i := 0; ; i++ {
		j.path = append(j.path, pathElem{index: i})
		err := j.value()
		j.path = j.path[:len(j.path)-1]
		if err != nil {
			return err
		}
		c, err := j.skipSpace()
		if err != nil {
			return unexpected(err)
		}
		j.readByte()
		switch c {
		case ',':
			continue
		case ']':
			return nil
		}
		return j.syntax("expected ',' or ']'")
	}
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// str reads a string whose opening quote was read (and copied). A key is
// kept whole in j.buf (bounded by maxKeyLen); a value is handed to
// onString in segments. With an output, the string's content is written
// re-escaped (a value redacted) and then the closing quote.
func (j *jsonScanner) str(key bool) error {
	j.buf = j.buf[:0]
	segOff := j.off
	out := j.out
	j.out = nil
	defer func() { j.out = out }()
	for {
		// Fast path: take the run up to the next quote, backslash or
		// control byte straight from the buffer.
		peek, _ := j.r.Peek(max(1, min(j.r.Buffered(), 4096)))
		n := 0
		for n < len(peek) && peek[n] != '"' && peek[n] != '\\' && peek[n] >= 0x20 {
			n++
		}
		if n > 0 {
			j.buf = append(j.buf, peek[:n]...)
			j.r.Discard(n)
			j.off += int64(n)
			if key && len(j.buf) > maxKeyLen {
				return j.syntax("key too long")
			}
			if !key && len(j.buf) >= j.maxField {
				j.flushSegment(&segOff, false, out)
			}
			continue
		}
		c, err := j.r.ReadByte()
		if err != nil {
			return unexpected(err)
		}
		j.off++
		switch {
		case c == '"':
			if key {
				if out != nil {
					writeJSONString(out, j.buf, false)
				}
			} else {
				j.flushSegment(&segOff, true, out)
			}
			if out != nil {
				out.WriteByte('"')
			}
			return nil
		case c < 0x20:
			return j.syntax("control character in string")
		case c == '\\':
			if err := j.escape(); err != nil {
				return err
			}
		}
	}
}

// flushSegment hands the decoded text gathered so far to onString (and,
// redacted, to out), keeping the text after the last line end or space
// (or an incomplete UTF-8 sequence) for the next segment.
func (j *jsonScanner) flushSegment(segOff *int64, final bool, out *bufio.Writer) {
	cut := len(j.buf)
	if !final {
		q := len(j.buf) * 3 / 4
		if i := bytes.LastIndexByte(j.buf[q:], '\n'); i >= 0 {
			cut = q + i + 1
		} else if i := bytes.LastIndexByte(j.buf[q:], ' '); i >= 0 {
			cut = q + i + 1
		} else {
			for cut > 0 && !utf8.RuneStart(j.buf[cut-1]) {
				cut--
			}
			if cut > 0 {
				cut--
			}
			if cut == 0 {
				cut = len(j.buf)
			}
		}
	}
	seg := j.buf[:cut]
	if j.onString != nil {
		j.onString(j.path, seg, *segOff)
	}
	if out != nil {
		if j.redact != nil {
			writeJSONString(out, []byte(j.redact(string(seg))), false)
		} else {
			writeJSONString(out, seg, false)
		}
	}
	// Offsets of later segments count decoded bytes: exact unless the
	// string has escapes.
	*segOff += int64(cut)
	rest := copy(j.buf, j.buf[cut:])
	j.buf = j.buf[:rest]
}

// writeJSONString writes s escaped as JSON string content (with quotes
// when quoted).
func writeJSONString(w *bufio.Writer, s []byte, quoted bool) {
	if quoted {
		w.WriteByte('"')
	}
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			w.WriteByte('\\')
			w.WriteByte(c)
		case c == '\n':
			w.WriteString(`\n`)
		case c == '\r':
			w.WriteString(`\r`)
		case c == '\t':
			w.WriteString(`\t`)
		case c < 0x20:
			w.WriteString(`\u00`)
			w.WriteByte(hex[c>>4])
			w.WriteByte(hex[c&15])
		case c < utf8.RuneSelf:
			w.WriteByte(c)
		default:
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				w.WriteString(`\ufffd`)
			} else {
				w.Write(s[i : i+n])
			}
			i += n
			continue
		}
		i++
	}
	if quoted {
		w.WriteByte('"')
	}
}

func (j *jsonScanner) escape() error {
	c, err := j.r.ReadByte()
	if err != nil {
		return unexpected(err)
	}
	j.off++
	switch c {
	case '"', '\\', '/':
		j.buf = append(j.buf, c)
	case 'b':
		j.buf = append(j.buf, '\b')
	case 'f':
		j.buf = append(j.buf, '\f')
	case 'n':
		j.buf = append(j.buf, '\n')
	case 'r':
		j.buf = append(j.buf, '\r')
	case 't':
		j.buf = append(j.buf, '\t')
	case 'u':
		r, err := j.hex4()
		if err != nil {
			return err
		}
		if utf16.IsSurrogate(r) {
			// A low surrogate must follow: \uDC00-\uDFFF.
			if p, _ := j.r.Peek(2); len(p) == 2 && p[0] == '\\' && p[1] == 'u' {
				j.r.Discard(2)
				j.off += 2
				r2, err := j.hex4()
				if err != nil {
					return err
				}
				r = utf16.DecodeRune(r, r2)
			} else {
				r = utf8.RuneError
			}
		}
		j.buf = utf8.AppendRune(j.buf, r)
	default:
		return j.syntax(fmt.Sprintf("bad escape \\%c", c))
	}
	return nil
}

func (j *jsonScanner) hex4() (rune, error) {
	var h [4]byte
	for i := range h {
		c, err := j.r.ReadByte()
		if err != nil {
			return 0, unexpected(err)
		}
		j.off++
		h[i] = c
	}
	v, err := strconv.ParseUint(string(h[:]), 16, 32)
	if err != nil {
		return 0, j.syntax("bad \\u escape")
	}
	return rune(v), nil
}

var errNotJSON = errors.New("not JSON")
