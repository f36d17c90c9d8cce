package pickle

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// keepString is how many bytes of a string operand the decoder keeps; the
// rest is skipped while streaming. Module and attribute names are far
// shorter; a longer string is treated as not statically known.
const keepString = 1024

// breakKind says why a stream could not be decoded further.
type breakKind int

const (
	breakBadOpcode breakKind = iota + 1
	breakTruncated
	breakMalformed
)

// streamBreak is malformed input: a finding, never an error of Scan.
type streamBreak struct {
	kind breakKind
	off  int64
	msg  string
}

func (e *streamBreak) Error() string { return e.msg }

// readError wraps a failure of the underlying reader (not end of input).
type readError struct{ err error }

func (e *readError) Error() string { return "reading pickle data: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// ctxReader fails reads once ctx is done, so that long skips stop promptly.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// operand is a decoded opcode argument. Only bounded prefixes of strings are
// kept; length is what the stream claimed.
type operand struct {
	n       int64   // integer value, memo index, protocol, frame size, ext code
	f       float64 // float value
	s       string  // string value (module for GLOBAL/INST), at most keepString bytes
	full    bool    // s is the complete value
	name    string  // name line of GLOBAL/INST
	full2   bool    // name is complete
	length  int64   // claimed byte length of counted operands
	dataOff int64   // where the bytes of a counted operand start
	text    string  // raw text of numeric lines, for display
}

// instr is one decoded opcode.
type instr struct {
	off  int64
	code op
	info *opInfo
	arg  operand
}

// source decodes opcodes from a stream, tracking the byte offset.
//
// Frames: CPython's C unpickler reading from a file object (pickle.load,
// torch.load, joblib.load, numpy.load) reads a FRAME's bytes into a buffer
// and serves later reads from it; a read that needs more than the buffer
// still holds throws the rest of the frame away and takes fresh bytes from
// the file after it (counted bytes objects excepted: they are copied
// across). pickle.loads on a bytes object ignores frames. source follows
// the file behaviour unless bytesSem is set, and records where a read
// crossed a frame end (the two readings differ there).
type source struct {
	ctx      context.Context
	br       *bufio.Reader
	off      int64
	buf      [8]byte
	size     int64 // total input bytes when known, else -1
	bytesSem bool  // pickle.loads semantics: frames are ignored
	frameEnd int64 // end of the current frame, -1 outside frames
	straddle []int64
}

func newSource(ctx context.Context, r io.Reader, bufSize int) *source {
	return &source{ctx: ctx, br: bufio.NewReaderSize(ctxReader{ctx, r}, bufSize), size: -1, frameEnd: -1}
}

// maxStraddles bounds the frame-crossing offsets remembered.
const maxStraddles = 16

// fit prepares a read of n bytes that CPython serves from its frame
// buffer only when it fits: otherwise the rest of the frame is skipped.
func (s *source) fit(n int64) error {
	if s.frameEnd < 0 {
		return nil
	}
	if s.off >= s.frameEnd {
		s.frameEnd = -1
		return nil
	}
	if n <= s.frameEnd-s.off {
		return nil
	}
	return s.leaveFrame()
}

// leaveFrame skips the unread rest of the current frame.
func (s *source) leaveFrame() error {
	at := s.off
	skip := s.frameEnd - s.off
	s.frameEnd = -1
	c, err := io.CopyN(io.Discard, s.br, skip)
	s.off += c
	if err != nil {
		return s.readErr(err, "a frame")
	}
	if len(s.straddle) < maxStraddles {
		s.straddle = append(s.straddle, at)
	}
	return nil
}

// frame starts a FRAME of n bytes at the current offset.
func (s *source) frame(n int64, in *instr) error {
	if s.size >= 0 && n > s.size-s.off {
		return s.fail(breakTruncated, in.off, "FRAME at offset %d claims %d bytes, %d remain", in.off, n, s.size-s.off)
	}
	if s.bytesSem {
		return nil
	}
	if s.frameEnd >= 0 && s.off < s.frameEnd {
		if n <= s.frameEnd-s.off {
			return nil // a frame inside the buffered frame changes nothing
		}
		if err := s.leaveFrame(); err != nil {
			return err
		}
	}
	s.frameEnd = s.off + n
	return nil
}

// fitLine prepares reading a line: inside a frame, a line whose newline
// lies beyond the frame's end is read from the frame's end instead.
func (s *source) fitLine() error {
	if s.frameEnd < 0 {
		return nil
	}
	if s.off >= s.frameEnd {
		s.frameEnd = -1
		return nil
	}
	left := s.frameEnd - s.off
	b, _ := s.br.Peek(int(min(left, int64(s.br.Size()))))
	if bytes.IndexByte(b, '\n') >= 0 {
		return nil
	}
	if int64(len(b)) < left {
		return nil // a line longer than the buffer: readLine marks it
	}
	return s.leaveFrame()
}

func (s *source) fail(kind breakKind, off int64, format string, a ...any) error {
	return &streamBreak{kind: kind, off: off, msg: fmt.Sprintf(format, a...)}
}

func (s *source) readErr(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return s.fail(breakTruncated, s.off, "data ends inside %s at offset %d", what, s.off)
	}
	return &readError{err}
}

func (s *source) readFixed(n int, what string) ([]byte, error) {
	if err := s.fit(int64(n)); err != nil {
		return nil, err
	}
	b := s.buf[:n]
	m, err := io.ReadFull(s.br, b)
	s.off += int64(m)
	if err != nil {
		return nil, s.readErr(err, what)
	}
	return b, nil
}

// readLine reads a newline-terminated line, keeping at most max bytes.
func (s *source) readLine(max int, what string) (string, bool, error) {
	if err := s.fitLine(); err != nil {
		return "", false, err
	}
	start := s.off
	var kept []byte
	full := true
	defer func() {
		// A line that started inside a frame and ran past its end, longer
		// than fitLine could look ahead: CPython read it differently.
		if s.frameEnd >= 0 && start < s.frameEnd && s.off > s.frameEnd {
			full = false
			s.frameEnd = -1
			if len(s.straddle) < maxStraddles {
				s.straddle = append(s.straddle, start)
			}
		}
	}()
	for {
		chunk, err := s.br.ReadSlice('\n')
		s.off += int64(len(chunk))
		if err == nil {
			chunk = chunk[:len(chunk)-1]
		}
		if room := max - len(kept); room > 0 {
			if len(chunk) > room {
				kept = append(kept, chunk[:room]...)
				full = false
			} else {
				kept = append(kept, chunk...)
			}
		} else if len(chunk) > 0 {
			full = false
		}
		switch {
		case err == nil:
			return string(kept), full, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return "", false, s.readErr(err, what)
		}
	}
}

// readCounted reads a claimed number of bytes, keeping at most keep of them
// and skipping the rest without buffering it.
func (s *source) readCounted(n int64, keep int, what string, contiguous bool) (string, bool, error) {
	if !contiguous {
		if err := s.fit(n); err != nil {
			return "", false, err
		}
	}
	if s.size >= 0 && n > s.size-s.off {
		return "", false, s.fail(breakTruncated, s.off, "%s claims %d bytes but only %d remain", what, n, s.size-s.off)
	}
	k := int64(keep)
	if n < k {
		k = n
	}
	b := make([]byte, k)
	m, err := io.ReadFull(s.br, b)
	s.off += int64(m)
	if err != nil {
		return "", false, s.fail(breakTruncated, s.off, "%s claims %d bytes but the data ends after %d", what, n, m)
	}
	if rest := n - k; rest > 0 {
		c, err := io.CopyN(io.Discard, s.br, rest)
		s.off += c
		if err != nil {
			if errors.Is(err, io.EOF) {
				return "", false, s.fail(breakTruncated, s.off, "%s claims %d bytes but the data ends after %d", what, n, k+c)
			}
			return "", false, &readError{err}
		}
	}
	return string(b), k == n, nil
}

// peek returns up to n upcoming bytes without consuming them.
func (s *source) peek(n int) ([]byte, error) {
	b, err := s.br.Peek(n)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return b, &readError{err}
	}
	return b, nil
}

// next decodes one opcode. It returns io.EOF when the input ends exactly
// at an opcode boundary, a *streamBreak for malformed input and a
// *readError when the reader fails.
func (s *source) next() (instr, error) {
	if err := s.fit(1); err != nil {
		return instr{off: s.off}, err
	}
	in := instr{off: s.off}
	c, err := s.br.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return in, io.EOF
		}
		return in, &readError{err}
	}
	s.off++
	in.code = op(c)
	in.info = &opTable[c]
	if in.info.name == "" {
		return in, s.fail(breakBadOpcode, in.off, "byte 0x%02x at offset %d is not a pickle opcode", c, in.off)
	}
	name := in.info.name
	a := &in.arg
	switch in.info.arg {
	case argNone:
	case argU1:
		b, err := s.readFixed(1, name)
		if err != nil {
			return in, err
		}
		a.n = int64(b[0])
	case argU2:
		b, err := s.readFixed(2, name)
		if err != nil {
			return in, err
		}
		a.n = int64(binary.LittleEndian.Uint16(b))
	case argI4:
		b, err := s.readFixed(4, name)
		if err != nil {
			return in, err
		}
		a.n = int64(int32(binary.LittleEndian.Uint32(b)))
	case argU4:
		b, err := s.readFixed(4, name)
		if err != nil {
			return in, err
		}
		a.n = int64(binary.LittleEndian.Uint32(b))
	case argU8:
		b, err := s.readFixed(8, name)
		if err != nil {
			return in, err
		}
		v := binary.LittleEndian.Uint64(b)
		if v > math.MaxInt64 {
			return in, s.fail(breakMalformed, in.off, "%s at offset %d claims %d bytes, more than any file can hold", name, in.off, v)
		}
		a.n = int64(v)
	case argF8:
		b, err := s.readFixed(8, name)
		if err != nil {
			return in, err
		}
		a.f = math.Float64frombits(binary.BigEndian.Uint64(b))
	case argIntLine, argFloatLine, argMemoLine:
		line, full, err := s.readLine(keepString, name)
		if err != nil {
			return in, err
		}
		a.text = line
		if !full {
			break // a huge literal; Python accepts long integers
		}
		if err := parseNumberLine(in.info.arg, in.code, line, a); err != nil {
			return in, s.fail(breakMalformed, in.off, "%s at offset %d: %v", name, in.off, err)
		}
	case argQuotedLine:
		line, full, err := s.readLine(keepString, name)
		if err != nil {
			return in, err
		}
		if !full {
			a.s = line
			break
		}
		if len(line) < 2 || line[0] != line[len(line)-1] || (line[0] != '\'' && line[0] != '"') {
			return in, s.fail(breakMalformed, in.off, "STRING at offset %d is not quoted", in.off)
		}
		v, err := escapeDecode(line[1 : len(line)-1])
		if err != nil {
			return in, s.fail(breakMalformed, in.off, "STRING at offset %d: %v", in.off, err)
		}
		a.s, a.full = v, true
	case argUnicodeLine:
		line, full, err := s.readLine(keepString, name)
		if err != nil {
			return in, err
		}
		if !full {
			a.s = line
			break
		}
		v, err := rawUnicodeEscapeDecode(line)
		if err != nil {
			return in, s.fail(breakMalformed, in.off, "UNICODE at offset %d: %v", in.off, err)
		}
		a.s, a.full = v, true
	case argLine:
		a.s, a.full, err = s.readLine(keepString, name)
		if err != nil {
			return in, err
		}
	case argTwoLines:
		if a.s, a.full, err = s.readLine(keepString, name+" module"); err != nil {
			return in, err
		}
		if a.name, a.full2, err = s.readLine(keepString, name+" name"); err != nil {
			return in, err
		}
		if !utf8.ValidString(a.s) || !utf8.ValidString(a.name) {
			return in, s.fail(breakMalformed, in.off, "%s at offset %d: module or name is not UTF-8", name, in.off)
		}
	case argStr1, argStr4, argStr4U, argStr8:
		var n int64
		switch in.info.arg {
		case argStr1:
			b, err := s.readFixed(1, name)
			if err != nil {
				return in, err
			}
			n = int64(b[0])
		case argStr4:
			b, err := s.readFixed(4, name)
			if err != nil {
				return in, err
			}
			n = int64(int32(binary.LittleEndian.Uint32(b)))
			if n < 0 {
				return in, s.fail(breakMalformed, in.off, "%s at offset %d has a negative length", name, in.off)
			}
		case argStr4U:
			b, err := s.readFixed(4, name)
			if err != nil {
				return in, err
			}
			n = int64(binary.LittleEndian.Uint32(b))
		case argStr8:
			b, err := s.readFixed(8, name)
			if err != nil {
				return in, err
			}
			v := binary.LittleEndian.Uint64(b)
			if v > math.MaxInt64 {
				return in, s.fail(breakMalformed, in.off, "%s at offset %d claims %d bytes, more than any file can hold", name, in.off, v)
			}
			n = int64(v)
		}
		a.length = n
		keep := keepString
		if !isStrOp(in.code) {
			keep = 64 // bytes and long integers: only shown, never interpreted
		}
		// Bytes objects are copied across a frame end (readinto).
		contiguous := in.code == opBinBytes || in.code == opShortBinBytes || in.code == opBinBytes8 || in.code == opByteArray8
		a.dataOff = s.off
		a.s, a.full, err = s.readCounted(n, keep, name, contiguous)
		if err != nil {
			return in, err
		}
	}
	return in, nil
}

// parseNumberLine checks a protocol 0 numeric literal the way CPython's
// C unpickler accepts it (differential tests hold it to that):
//   - FLOAT: PyOS_string_to_double, the whole line (signed inf/infinity/nan
//     in any case, overflow refused), and also what the pure-Python
//     unpickler's float() takes (white space, underscores);
//   - INT: C strtol base 0 over the whole line, else int(line, 0);
//   - LONG: one trailing 'L' dropped, then int(line, 0);
//   - PUT/GET: int(line) in base 10, PUT not negative.
func parseNumberLine(k argKind, code op, line string, a *operand) error {
	switch k {
	case argFloatLine:
		v, ok := pyFloat(line)
		if !ok {
			// joblib unpickles with the pure-Python unpickler, whose
			// float() also takes surrounding white space and underscores
			// between digits: read on where either would.
			v, ok = pyFloat(pyFloatLoose(line))
		}
		if !ok {
			return fmt.Errorf("%q is not a float", line)
		}
		a.f = v
		return nil
	case argIntLine:
		if code == opLong {
			line = strings.TrimSuffix(line, "L")
			v, ok := pyInt(line, 0)
			if !ok {
				return fmt.Errorf("%q is not an integer", line)
			}
			a.n = v
			return nil
		}
		if v, ok := cStrtol0(line); ok {
			a.n = v
			return nil
		}
		v, ok := pyInt(line, 0)
		if !ok {
			return fmt.Errorf("%q is not an integer", line)
		}
		a.n = v
		return nil
	default: // memo index
		v, ok := pyInt(line, 10)
		if !ok {
			return fmt.Errorf("%q is not a memo index", line)
		}
		if code == opPut && v < 0 {
			return fmt.Errorf("negative memo index %d", v)
		}
		a.n = v
		return nil
	}
}

// pyFloatLoose strips what Python's float() accepts beyond
// PyOS_string_to_double: surrounding white space, single underscores
// between digits.
func pyFloatLoose(s string) string {
	s = strings.TrimFunc(s, func(r rune) bool { return r < 0x80 && cSpace(byte(r)) })
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '_' && i > 0 && i+1 < len(s) && s[i-1] >= '0' && s[i-1] <= '9' && s[i+1] >= '0' && s[i+1] <= '9' {
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cSpace is C's isspace in the "C" locale (and CPython's Py_ISSPACE).
func cSpace(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }

// pyFloat accepts what PyOS_string_to_double accepts as a whole string.
func pyFloat(s string) (float64, bool) {
	t := s
	if t != "" && (t[0] == '+' || t[0] == '-') {
		t = t[1:]
	}
	switch strings.ToLower(t) {
	case "inf", "infinity", "nan":
		v, err := strconv.ParseFloat(strings.ToLower(s), 64)
		if err != nil { // "-nan": Go has no signed NaN
			return math.NaN(), true
		}
		return v, true
	}
	digits, i := 0, 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
		digits++
	}
	if i < len(t) && t[i] == '.' {
		i++
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(t) && (t[i] == 'e' || t[i] == 'E') {
		i++
		if i < len(t) && (t[i] == '+' || t[i] == '-') {
			i++
		}
		e := i
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
		}
		if i == e {
			return 0, false
		}
	}
	if i != len(t) {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil && math.IsInf(v, 0) {
		return 0, false // CPython raises OverflowError
	}
	return v, true
}

// cStrtol0 accepts what C strtol(s, &end, 0) parses completely without
// overflow (leading white space, sign, 0x hex, leading-0 octal).
func cStrtol0(s string) (int64, bool) {
	i := 0
	for i < len(s) && cSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	base := 10
	switch {
	case i+2 < len(s) && s[i] == '0' && s[i+1]|0x20 == 'x' && hexDigit(s[i+2]):
		base, i = 16, i+2
	case i < len(s) && s[i] == '0':
		base = 8
	}
	start := i
	for i < len(s) && digitIn(s[i], base) {
		i++
	}
	if i == start || i != len(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(s[start:i], base, 64)
	if err != nil || v > math.MaxInt64 && !(neg && v == 1<<63) {
		return 0, false // ERANGE: CPython falls back to int()
	}
	if neg {
		return -int64(v), true
	}
	return int64(v), true
}

func hexDigit(c byte) bool { return digitIn(c, 16) }

func digitIn(c byte, base int) bool {
	var d int
	switch {
	case c >= '0' && c <= '9':
		d = int(c - '0')
	case c|0x20 >= 'a' && c|0x20 <= 'z':
		d = int(c|0x20-'a') + 10
	default:
		return false
	}
	return d < base
}

// pyInt accepts what Python's int(s, base) accepts for base 0 or 10:
// surrounding ASCII white space, a sign, (base 0) 0x/0o/0b prefixes with
// an optional underscore after them, single underscores between digits,
// and (base 0) no leading zeros on a non-zero decimal. The value is
// exact when it fits int64, else clamped (only its acceptance matters).
func pyInt(s string, base int) (int64, bool) {
	s = strings.TrimFunc(s, func(r rune) bool { return r < 0x80 && cSpace(byte(r)) })
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	b := 10
	prefixed := false
	if base == 0 && len(s) >= 2 && s[0] == '0' {
		switch s[1] | 0x20 {
		case 'x':
			b, prefixed = 16, true
		case 'o':
			b, prefixed = 8, true
		case 'b':
			b, prefixed = 2, true
		}
	}
	if prefixed {
		s = strings.TrimPrefix(s[2:], "_")
	}
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' || strings.Contains(s, "__") {
		return 0, false
	}
	digits := strings.ReplaceAll(s, "_", "")
	for i := 0; i < len(digits); i++ {
		if !digitIn(digits[i], b) {
			return 0, false
		}
	}
	if base == 0 && !prefixed && len(digits) > 1 && digits[0] == '0' && strings.Trim(digits, "0") != "" {
		return 0, false // "010": leading zeros are not allowed
	}
	v, err := strconv.ParseInt(digits, b, 64)
	if err != nil {
		v = math.MaxInt64
	}
	if neg {
		v = -v
	}
	return v, true
}

// escapeDecode undoes Python's bytes escapes (codecs.escape_decode), as the
// STRING opcode does.
func escapeDecode(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			return "", errors.New(`trailing \ in string`)
		}
		switch c = s[i]; c {
		case '\n':
		case '\\', '\'', '"':
			b.WriteByte(c)
		case 'a':
			b.WriteByte(7)
		case 'b':
			b.WriteByte(8)
		case 'f':
			b.WriteByte(12)
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte(11)
		case 'x':
			if i+2 >= len(s) {
				return "", fmt.Errorf(`invalid \x escape at position %d`, i-1)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf(`invalid \x escape at position %d`, i-1)
			}
			b.WriteByte(byte(v))
			i += 2
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for j := 0; j < 2 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; j++ {
				i++
				v = v*8 + int(s[i]-'0')
			}
			b.WriteByte(byte(v))
		default:
			b.WriteByte('\\')
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// rawUnicodeEscapeDecode decodes Python's raw-unicode-escape codec, as the
// UNICODE opcode does: bytes are Latin-1, and \uXXXX / \UXXXXXXXX escapes
// count only after an odd number of backslashes.
func rawUnicodeEscapeDecode(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			b.WriteRune(rune(c))
			i++
			continue
		}
		start := i
		for i < len(s) && s[i] == '\\' {
			i++
		}
		n := i - start
		if n%2 == 0 || i >= len(s) || (s[i] != 'u' && s[i] != 'U') {
			b.WriteString(s[start:i])
			continue
		}
		b.WriteString(s[start : i-1])
		digits := 4
		if s[i] == 'U' {
			digits = 8
		}
		i++
		if i+digits > len(s) {
			return "", fmt.Errorf(`truncated \u escape at position %d`, i-2)
		}
		v, err := strconv.ParseUint(s[i:i+digits], 16, 32)
		if err != nil || v > utf8.MaxRune {
			return "", fmt.Errorf(`bad \u escape at position %d`, i-2)
		}
		b.WriteRune(rune(v))
		i += digits
	}
	return b.String(), nil
}
