package datascan

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
)

// recordBuilder gathers the fields of one record from a reader's
// callbacks and hands the record on when it ends or grows past the limit.
type recordBuilder struct {
	fs    *fileScan
	rec   record
	bytes int
	keys  map[string]bool // top-level keys seen in the file (schema)
}

func (b *recordBuilder) start(index int64) {
	b.rec = record{index: index, fields: b.rec.fields[:0]} // submit copies the fields
	b.bytes = 0
}

// add appends a field; a record grown past MaxRecordBytes is processed in
// parts.
func (b *recordBuilder) add(f field) {
	if b.bytes+len(f.text) > b.fs.o.MaxRecordBytes && len(b.rec.fields) > 0 {
		b.fs.submit(&b.rec, true)
		b.rec.fields = b.rec.fields[:0]
		b.bytes = 0
	}
	b.rec.fields = append(b.rec.fields, f)
	b.bytes += len(f.text)
}

func (b *recordBuilder) setMeta(k, v string) {
	if b.rec.meta == nil {
		b.rec.meta = map[string]string{}
	}
	if len(v) > 256 {
		v = v[:256]
	}
	b.rec.meta[k] = v
}

func (b *recordBuilder) end() {
	resolveRoles(&b.rec)
	b.fs.submit(&b.rec, false)
}

// Keys whose values are prompts or responses in instruction data.
var (
	promptKeys   = map[string]bool{"prompt": true, "instruction": true, "input": true, "question": true, "query": true, "context": true, "system": true}
	responseKeys = map[string]bool{"completion": true, "output": true, "response": true, "answer": true, "chosen": true, "target": true}
	promptRoles  = map[string]bool{"user": true, "system": true, "human": true, "prompter": true}
	replyRoles   = map[string]bool{"assistant": true, "gpt": true, "model": true, "bot": true, "chatbot": true}
	metaKeys     = map[string]string{"license": "license", "licence": "license", "source": "source", "url": "source", "source_url": "source"}
)

func resolveRoles(rec *record) {
	for i := range rec.fields {
		f := &rec.fields[i]
		if f.elem >= 0 {
			switch r := rec.meta["role:"+strconv.Itoa(f.elem)]; {
			case promptRoles[r]:
				f.role = rolePrompt
			case replyRoles[r]:
				f.role = roleResponse
			}
		}
	}
}

// jsonString is the reader's callback for one string segment.
func (b *recordBuilder) jsonString(path []pathElem, text []byte, off int64) {
	var top, last string
	elem := -1
	var name strings.Builder
	for i, p := range path {
		if i > 0 {
			name.WriteByte('.')
		}
		if p.index >= 0 {
			name.WriteString(strconv.Itoa(p.index))
		} else {
			name.WriteString(p.key)
		}
		if i == 0 {
			top = p.key
		}
		last = p.key
	}
	if len(path) >= 2 && path[1].index >= 0 && (top == "messages" || top == "conversations" || top == "conversation") {
		elem = path[1].index
		if len(path) == 3 && (last == "role" || last == "from") {
			b.setMeta("role:"+strconv.Itoa(elem), strings.ToLower(string(text)))
			return
		}
	}
	if len(path) == 1 {
		if m, ok := metaKeys[strings.ToLower(top)]; ok {
			b.setMeta(m, string(text))
		}
	}
	f := field{name: name.String(), text: string(text), off: off, elem: elem}
	switch {
	case promptKeys[strings.ToLower(top)] && len(path) == 1:
		f.role = rolePrompt
	case responseKeys[strings.ToLower(top)] && len(path) == 1:
		f.role = roleResponse
	}
	b.add(f)
}

func (b *recordBuilder) jsonKey(path []pathElem, key string) {
	if len(path) == 0 && len(b.keys) < 64 {
		b.keys[key] = true
	}
}

// schemaOf names the layout of JSON records from their top-level keys.
func schemaOf(keys map[string]bool) string {
	switch {
	case keys["messages"] || keys["conversations"] || keys["conversation"]:
		return "chat"
	case keys["prompt"] && (keys["completion"] || keys["response"] || keys["chosen"]):
		return "prompt_completion"
	case keys["instruction"] && (keys["output"] || keys["response"]):
		return "instruction"
	case keys["text"] && len(keys) <= 4:
		return "text"
	}
	ks := make([]string, 0, len(keys))
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	if len(ks) > 12 {
		ks = append(ks[:12], "...")
	}
	return "fields:" + strings.Join(ks, ",")
}

func (fs *fileScan) newJSON(r *bufio.Reader, out *bufio.Writer, b *recordBuilder) *jsonScanner {
	j := &jsonScanner{r: r, out: out, maxField: fs.o.MaxFieldBytes, onString: b.jsonString, onKey: b.jsonKey}
	if out != nil {
		j.redact = fs.run.redactText
	}
	return j
}

// readJSONL reads one JSON value per line. A line that is not valid JSON
// is reported (the first one per file is the file's error) and skipped.
func (fs *fileScan) readJSONL(r *bufio.Reader, out *bufio.Writer) error {
	b := &recordBuilder{fs: fs, keys: map[string]bool{}}
	j := fs.newJSON(r, out, b)
	var line int64
	for ; ; line++ {
		if err := fs.ctx.Err(); err != nil {
			return err
		}
		c, err := j.skipSpace()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		_ = c
		b.start(line)
		start := j.off
		err = j.value()
		if err == nil {
			// The rest of the line must be blank.
			for {
				c, e := j.r.ReadByte()
				if e != nil {
					break
				}
				if c == '\n' {
					j.off++
					if out != nil {
						out.WriteByte('\n')
					}
					break
				}
				if c != ' ' && c != '\t' && c != '\r' {
					j.r.UnreadByte()
					err = j.syntax("more than one value on the line")
					break
				}
				j.off++
				if out != nil {
					out.WriteByte(c)
				}
			}
		}
		if err != nil {
			var se *errSyntax
			if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) {
				fs.badRecord(line, start, err)
				if !skipLine(j, out, fs.run.redactText) {
					break
				}
				continue
			}
			return err
		}
		b.end()
	}
	fs.info.Schema = schemaOf(b.keys)
	return nil
}

// skipLine discards the rest of a bad line (copying it to out redacted
// as plain text: a redacted copy keeps the line count) and reports
// whether input remains.
func skipLine(j *jsonScanner, out *bufio.Writer, redactText func(string) string) bool {
	for {
		chunk, err := j.r.ReadSlice('\n')
		j.off += int64(len(chunk))
		if out != nil {
			out.WriteString(redactText(string(chunk)))
		}
		if err == nil {
			return true
		}
		if err != bufio.ErrBufferFull {
			return false
		}
	}
}

// readJSON reads a JSON document: the elements of a top-level array are
// the records; any other value is one record.
func (fs *fileScan) readJSON(r *bufio.Reader, out *bufio.Writer) error {
	b := &recordBuilder{fs: fs, keys: map[string]bool{}}
	j := fs.newJSON(r, out, b)
	c, err := j.skipSpace()
	if err != nil {
		return err
	}
	if c != '[' {
		b.start(0)
		if err := j.value(); err != nil {
			return err
		}
		b.end()
		fs.info.Schema = schemaOf(b.keys)
		return trailing(j)
	}
	j.readByte()
	c, err = j.skipSpace()
	if err != nil {
		return unexpected(err)
	}
	if c == ']' {
		j.readByte()
		return trailing(j)
	}
	for i := int64(0); ; i++ {
		if err := fs.ctx.Err(); err != nil {
			return err
		}
		b.start(i)
		// Element keys are the records' top-level keys.
		j.path = j.path[:0]
		if err := j.value(); err != nil {
			return err
		}
		b.end()
		c, err := j.skipSpace()
		if err != nil {
			return unexpected(err)
		}
		j.readByte()
		if c == ']' {
			break
		}
		if c != ',' {
			return j.syntax("expected ',' or ']'")
		}
	}
	fs.info.Schema = schemaOf(b.keys)
	return trailing(j)
}

func trailing(j *jsonScanner) error {
	c, err := j.skipSpace()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return err
	}
	return j.syntax(fmt.Sprintf("unexpected %q after the document", c))
}

// readText reads a plain-text or Markdown file as one record, in segments
// of at most MaxFieldBytes cut at line ends.
func (fs *fileScan) readText(r *bufio.Reader, out *bufio.Writer) error {
	b := &recordBuilder{fs: fs}
	b.start(0)
	var off int64
	buf := make([]byte, 0, fs.o.MaxFieldBytes)
	flush := func(n int) {
		seg := buf[:n]
		b.add(field{name: "text", text: string(seg), off: off, elem: -1})
		if out != nil {
			out.WriteString(fs.run.redactText(string(seg)))
		}
		off += int64(n)
		buf = append(buf[:0], buf[n:]...)
	}
	for {
		if err := fs.ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) == cap(buf) {
			cut := bytes.LastIndexByte(buf, '\n') + 1
			if cut <= len(buf)/2 {
				cut = len(buf)
				for cut > 0 && !utf8.RuneStart(buf[cut-1]) {
					cut--
				}
				if cut > 0 {
					cut--
				}
				if cut == 0 {
					cut = len(buf)
				}
			}
			flush(cut)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if len(buf) > 0 {
		flush(len(buf))
	}
	b.end()
	fs.info.Schema = "text"
	return nil
}

// readCSV reads a CSV or TSV file: the first row names the columns, each
// later row is a record. Quoted fields may hold delimiters, quotes ("")
// and line ends; a field longer than MaxFieldBytes is handed on in
// segments.
func (fs *fileScan) readCSV(r *bufio.Reader, out *bufio.Writer, delim byte) error {
	b := &recordBuilder{fs: fs}
	var (
		header []string
		row    int64 = -1
		col    int
		cell   []byte
		off    int64
		start  int64
		quoted bool
		inQ    bool
		outRow []string
	)
	name := func() string {
		if col < len(header) {
			return header[col]
		}
		return "column" + strconv.Itoa(col+1)
	}
	endCell := func(final bool) {
		text := string(cell)
		if row < 0 {
			header = append(header, text)
			if out != nil {
				outRow = append(outRow, text)
			}
		} else {
			b.add(field{name: name(), text: text, off: start, elem: -1})
			if out != nil {
				outRow = append(outRow, fs.run.redactText(text))
			}
		}
		cell = cell[:0]
		if final {
			col++
		}
	}
	endRow := func() {
		if out != nil {
			writeCSVRow(out, outRow, delim)
			outRow = outRow[:0]
		}
		if row >= 0 {
			b.end()
		}
		row++
		b.start(row)
		col = 0
	}
	b.start(0)
	newCell := true
	for {
		c, err := r.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		off++
		if newCell {
			start = off - 1
			newCell = false
			quoted = false
			if c == '"' {
				quoted, inQ = true, true
				start = off
				continue
			}
		}
		switch {
		case inQ && c == '"':
			if n, _ := r.Peek(1); len(n) == 1 && n[0] == '"' {
				r.ReadByte()
				off++
				cell = append(cell, '"')
			} else {
				inQ = false
			}
			continue
		case inQ:
			cell = append(cell, c)
		case c == delim:
			endCell(true)
			newCell = true
			continue
		case c == '\n':
			if n := len(cell); n > 0 && cell[n-1] == '\r' && !quoted {
				cell = cell[:n-1]
			}
			endCell(true)
			endRow()
			newCell = true
			continue
		default:
			cell = append(cell, c)
		}
		if row < 0 && len(cell) > maxKeyLen {
			cell = cell[:maxKeyLen] // a column name: bounded, the rest dropped
		}
		if len(cell) >= fs.o.MaxFieldBytes && row >= 0 {
			// A huge cell: hand it on in parts (the redacted copy too).
			b.add(field{name: name(), text: string(cell), off: start, elem: -1})
			if out != nil {
				outRow = append(outRow, fs.run.redactText(string(cell)))
			}
			start += int64(len(cell))
			cell = cell[:0]
		}
		if len(header) > 100_000 {
			return fmt.Errorf("more than 100,000 columns")
		}
	}
	if inQ {
		fs.badRecord(row, start, errors.New("unterminated quoted field at the end of the file"))
	}
	if len(cell) > 0 || col > 0 {
		endCell(true)
		endRow()
	}
	fs.info.Schema = "columns:" + strings.Join(header[:min(len(header), 12)], ",")
	if row >= 0 {
		fs.info.Records = row
	}
	return nil
}

func writeCSVRow(w *bufio.Writer, cells []string, delim byte) {
	for i, c := range cells {
		if i > 0 {
			w.WriteByte(delim)
		}
		if strings.ContainsAny(c, "\"\r\n"+string(delim)) {
			w.WriteByte('"')
			w.WriteString(strings.ReplaceAll(c, `"`, `""`))
			w.WriteByte('"')
		} else {
			w.WriteString(c)
		}
	}
	w.WriteByte('\n')
}

// readParquet reads every row of a Parquet file; byte-array columns that
// hold UTF-8 text are the fields (named by their column path).
func (fs *fileScan) readParquet(ra io.ReaderAt, size int64) (err error) {
	defer func() {
		// parquet-go may panic on corrupt input; a panic is this file's
		// error, never the scan's end.
		if p := recover(); p != nil {
			err = fmt.Errorf("parquet: corrupt file: %v", p)
		}
	}()
	// The footer must be where the format puts it, of a sane length,
	// before parquet-go decodes it.
	if size < 12 {
		return fmt.Errorf("parquet: %d bytes is too short", size)
	}
	var tail [8]byte
	if _, err := ra.ReadAt(tail[:], size-8); err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	if string(tail[4:]) != "PAR1" {
		return errors.New("parquet: no PAR1 magic at the end of the file (truncated?)")
	}
	if n := int64(binary.LittleEndian.Uint32(tail[:4])); n <= 0 || n > size-12 || n > 256<<20 {
		return fmt.Errorf("parquet: footer length %d does not fit the file of %d bytes", n, size)
	}
	f, err := parquet.OpenFile(ra, size, parquet.SkipBloomFilters(true), parquet.ReadBufferSize(1<<20))
	if err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	cols := f.Schema().Columns()
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = strings.Join(c, ".")
	}
	fs.info.Schema = "columns:" + strings.Join(names[:min(len(names), 12)], ",")
	b := &recordBuilder{fs: fs}
	var index int64
	rows := make([]parquet.Row, 64)
	for _, rg := range f.RowGroups() {
		rr := rg.Rows()
		for {
			if err := fs.ctx.Err(); err != nil {
				rr.Close()
				return err
			}
			n, err := rr.ReadRows(rows)
			for _, row := range rows[:n] {
				b.start(index)
				for _, v := range row {
					if v.Kind() != parquet.ByteArray || v.IsNull() {
						continue
					}
					bs := v.ByteArray()
					if !utf8.Valid(bs) {
						continue
					}
					ci := v.Column()
					name := ""
					if ci >= 0 && ci < len(names) {
						name = names[ci]
					}
					top := strings.ToLower(strings.SplitN(name, ".", 2)[0])
					fl := field{name: name, text: string(bs), off: -1, elem: -1}
					switch {
					case promptKeys[top]:
						fl.role = rolePrompt
					case responseKeys[top]:
						fl.role = roleResponse
					}
					if m, ok := metaKeys[top]; ok {
						b.setMeta(m, fl.text)
					}
					b.add(fl)
				}
				b.end()
				index++
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				rr.Close()
				return fmt.Errorf("parquet: row %d: %w", index, err)
			}
		}
		rr.Close()
	}
	return nil
}
