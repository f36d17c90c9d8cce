package pickle

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"

	"github.com/llmfence/llmfence/internal/verdict"
)

//go:embed findings.yaml
var findingsYAML []byte

// data is everything the package loads from its embedded files, once, on
// first use; it is never modified afterwards.
type data struct {
	cat   *verdict.Catalogue
	lists *Lists
}

var loadData = sync.OnceValues(func() (*data, error) {
	cat, err := verdict.LoadCatalogue("internal/pickle/findings.yaml", findingsYAML, "PKL-")
	if err != nil {
		return nil, err
	}
	l, err := parseLists(listsYAML)
	if err != nil {
		return nil, err
	}
	if l.derived, err = parseDerived(derivedTxt); err != nil {
		return nil, err
	}
	return &data{cat: cat, lists: l}, nil
})

// loaded returns the embedded data, or an error saying it did not load.
func loaded() (*data, error) {
	d, err := loadData()
	if err != nil {
		return nil, fmt.Errorf("loading the pickle checks: %w", err)
	}
	return d, nil
}

// Catalogue returns the pickle findings catalogue (IDs PKL-...).
func Catalogue() (*verdict.Catalogue, error) {
	d, err := loaded()
	if err != nil {
		return nil, err
	}
	return d.cat, nil
}

// Options bound the analysis. Zero fields take the defaults.
type Options struct {
	MaxOpcodes int64 // opcodes over all streams (default 100,000,000)
	MaxStack   int   // symbolic stack entries, marks included (default 100,000)
	MaxMemo    int   // memo entries tracked (default 1,000,000)
	MaxStreams int   // concatenated streams (default 32)
	MaxDepth   int   // object nesting and MARK nesting (default 1,000)
	// Size is the number of bytes of the input when known (> 0): claims
	// past it (a FRAME longer than the data, a string longer than the
	// file) are refused at once, as CPython's unpickler refuses them.
	Size int64
	// Reopen, if set, returns a fresh reader over the same input from its
	// start, for the second reading of a stream that reads differently
	// from a file and from bytes (PKL-015). Without it Scan seeks r back
	// when r is an io.ReadSeeker.
	Reopen func() io.Reader
}

func (o Options) withDefaults() Options {
	if o.MaxOpcodes <= 0 {
		o.MaxOpcodes = 100_000_000
	}
	if o.MaxStack <= 0 {
		o.MaxStack = 100_000
	}
	if o.MaxMemo <= 0 {
		o.MaxMemo = 1_000_000
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = 32
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = 1000
	}
	return o
}

// maxRetained bounds the bytes of string values kept in the memo.
const maxRetained = 64 << 20

// maxPerFinding bounds how many findings of one ID are reported.
const maxPerFinding = 50

// maxGlobals bounds the distinct imports listed in a Result.
const maxGlobals = 10_000

// Global is one distinct import of the pickle.
type Global struct {
	Module     string `json:"module"`
	Name       string `json:"name"`
	Offset     int64  `json:"offset"` // first occurrence
	Opcode     string `json:"opcode"` // GLOBAL, INST, STACK_GLOBAL, EXT1 ...
	Class      Class  `json:"class"`
	Reason     string `json:"reason"`
	Count      int    `json:"count"`                // occurrences
	Called     bool   `json:"called"`               // applied by REDUCE, NEWOBJ, INST, OBJ ...
	Unresolved bool   `json:"unresolved,omitempty"` // module or name not statically known
}

// Result is what Scan learnt about a pickle file.
type Result struct {
	Streams  int               `json:"streams"`  // pickle streams found (concatenated)
	Protocol int               `json:"protocol"` // highest protocol seen
	Opcodes  int64             `json:"opcodes"`
	Globals  []Global          `json:"globals"`
	Findings []verdict.Finding `json:"findings"`
	// Embedded lists archives inside the stream that a loader opens from
	// literal bytes (torch.storage._load_from_bytes); the caller inspects
	// them and judges the call by what they hold.
	Embedded []Embedded `json:"embedded,omitempty"`
	// Complete is true when every stream ended with STOP and no limit cut
	// the analysis short.
	Complete bool `json:"complete"`
}

// Verdict is the worst verdict among the findings (Clean without any).
func (r *Result) Verdict() verdict.Verdict {
	out := verdict.Clean
	for _, f := range r.Findings {
		out = verdict.Worst(out, f.Verdict)
	}
	return out
}

// Scan analyses the pickle stream(s) in r without executing anything.
// Malformed, truncated or hostile input is reported as findings; the error
// is only for failures of r itself or a cancelled ctx.
//
// When a read crosses a FRAME's end, the stream reads differently from a
// file (loaders) and from bytes (pickle.loads): Scan reports PKL-015, and,
// when r is an io.ReadSeeker, reads it a second time the pickle.loads way
// and adds what that reading imports.
func Scan(ctx context.Context, r io.Reader, opts Options) (*Result, error) {
	start := int64(-1)
	if rs, ok := r.(io.ReadSeeker); ok {
		if p, err := rs.Seek(0, io.SeekCurrent); err == nil {
			start = p
		}
	}
	d, err := loaded()
	if err != nil {
		return nil, err
	}
	m := newMachine(ctx, d, r, opts, 64<<10)
	if err := m.run(ctx); err != nil {
		return m.res, err
	}
	if len(m.src.straddle) == 0 {
		return m.res, nil
	}
	res := m.res
	res.Findings = append(res.Findings, d.cat.New("PKL-015", fmt.Sprintf("a read at offset %d crosses the end of a FRAME", m.src.straddle[0]), m.src.straddle[0]))
	again := io.Reader(nil)
	switch rs, ok := r.(io.ReadSeeker); {
	case opts.Reopen != nil:
		again = opts.Reopen()
	case ok && start >= 0:
		if _, err := rs.Seek(start, io.SeekStart); err == nil {
			again = r
		}
	}
	if again == nil {
		return res, nil
	}
	b := newMachine(ctx, d, again, opts, 64<<10)
	b.src.bytesSem = true
	if err := b.run(ctx); err != nil {
		return res, err
	}
	mergeResults(res, b.res)
	return res, nil
}

// mergeResults adds the imports and findings of a second reading.
func mergeResults(dst, src *Result) {
	have := map[string]bool{}
	for _, g := range dst.Globals {
		have[g.Module+"\x00"+g.Name] = true
	}
	for _, g := range src.Globals {
		if !have[g.Module+"\x00"+g.Name] && len(dst.Globals) < maxGlobals {
			dst.Globals = append(dst.Globals, g)
		}
	}
	seen := map[string]bool{}
	for _, f := range dst.Findings {
		seen[f.ID+"\x00"+f.Detail] = true
	}
	for _, f := range src.Findings {
		if !seen[f.ID+"\x00"+f.Detail] {
			f.Detail += " (reading the bytes as pickle.loads does)"
			dst.Findings = append(dst.Findings, f)
		}
	}
	dst.Complete = dst.Complete && src.Complete
}

type kind uint8

const (
	vAny kind = iota
	vMark
	vStr
	vBytes
	vInt
	vFloat
	vBool
	vNone
	vGlobal
	vCall
	vList
	vDict
	vTuple
	vSet
	vPersist
)

var kindNames = [...]string{"an unknown value", "a MARK", "a string", "bytes", "an integer", "a float", "a bool", "None",
	"an imported name", "the result of a call", "a list", "a dict", "a tuple", "a set", "a persistent object"}

// value is the symbolic stand-in for a Python object on the stack or memo.
type value struct {
	k     kind
	known bool   // vStr: s is the complete string; vInt, vBool: n is exact
	cls   Class  // vGlobal
	depth int32  // nesting depth of containers
	g     int32  // vGlobal: index in Result.Globals, -1 if not listed
	s     string // vStr: the string; vGlobal, vCall: what it is
	n     int64  // vInt, vBool: the value; vBytes, vStr: where the payload starts
	ln    int64  // vBytes, vStr: how many payload bytes
	enc   uint8  // vStr: encUTF8 when n, ln locate its UTF-8 payload; vBytes: encLatin1 when the bytes are that payload latin-1 encoded
	// c holds what is tracked of a tuple, list or dict (its items) or of a
	// call result (callee, arguments, BUILD state); nil when untracked.
	// Shared between stack and memo copies, as Python objects are.
	c *cont
}

// cont is the tracked content of a container or call result. Only small
// values are tracked (maxTracked items per stream), enough to follow the
// joblib array layout and nested torch archives.
type cont struct {
	items []value // tuple and list items; dict keys and values alternating
	fn    string  // call result: the callee's full name
	args  value   // call result: the argument tuple
	state value   // call result: the BUILD state, if any
	built bool
}

// Payload encodings of located strings and bytes.
const (
	encRaw    uint8 = iota // the bytes as they are in the stream
	encUTF8                // vStr: a UTF-8 payload
	encLatin1              // vBytes: a UTF-8 payload, each character one byte
)

// maxTracked bounds the container items tracked per stream.
const maxTracked = 1 << 16

// track returns a new tracked container, or nil when the budget is spent.
func (m *machine) track(items []value) *cont {
	if m.tracked+len(items) > maxTracked {
		return nil
	}
	m.tracked += len(items) + 1
	return &cont{items: items}
}

// dictGet returns the value under a string key of a tracked dict.
func (v value) dictGet(key string) (value, bool) {
	if v.k != vDict || v.c == nil {
		return value{}, false
	}
	var out value
	found := false
	for i := 0; i+1 < len(v.c.items); i += 2 {
		if k := v.c.items[i]; k.k == vStr && k.known && k.s == key {
			out, found = v.c.items[i+1], true // the last one wins
		}
	}
	return out, found
}

func (v value) describe() string {
	switch v.k {
	case vStr:
		if v.known {
			return strconv.Quote(v.s)
		}
		return "a string too long to track"
	case vGlobal:
		return v.s
	case vCall:
		return "the result of calling " + v.s
	}
	return kindNames[v.k]
}

type endKind int

const (
	endStop endKind = iota
	endEmpty
	endBreak
	endLimit
)

type machine struct {
	d     *data
	opts  Options
	src   *source
	res   *Result
	sniff bool // Looks: stricter GLOBAL operands, no reporting needed
	// later: decoding a stream after the first, where bytes that only
	// look like an import of a non-identifier are trailing data.
	later bool

	stack    []value
	marks    int
	memo     map[int64]value
	memoFull bool
	retained int64

	tracked int // container items tracked in this stream
	nested  int // joblib object arrays unpickled inside this stream

	// loaders of embedded torch archives: imports per global index, and
	// calls made with a literal bytes argument
	nestedImports map[int32]int
	nestedCalls   map[int32]int

	globalIdx map[string]int
	perID     map[string]int
	seen      map[string]bool

	// per stream
	pending      []verdict.Finding
	streamOps    int64
	streamGlobs  int
	streamDanger string
	streamProto  int
	depthFlagged bool
	brk          *streamBreak

	calls int   // callables applied (REDUCE, NEWOBJ, INST, OBJ)
	last  value // what the last stream's STOP returned

	// afterStop, if set, runs after each complete stream (the stream's
	// number and result) to consume what a loader reads between streams;
	// done ends the analysis.
	afterStop func(stream int, result value) (done bool, err error)

	trace   func(in instr, marks int, note string)
	onBreak func(b *streamBreak)
	note    string
}

func newMachine(ctx context.Context, d *data, r io.Reader, opts Options, bufSize int) *machine {
	m := &machine{
		d:         d,
		opts:      opts.withDefaults(),
		src:       newSource(ctx, r, bufSize),
		res:       &Result{Globals: []Global{}, Findings: []verdict.Finding{}, Complete: true},
		globalIdx: map[string]int{},
		perID:     map[string]int{},
		seen:      map[string]bool{},
	}
	if opts.Size > 0 {
		m.src.size = opts.Size
	}
	return m
}

// add queues a finding of the current stream; key (if set) reports it once.
func (m *machine) add(id, detail string, off int64, key string) {
	if key != "" {
		if m.seen[id+"\x00"+key] {
			return
		}
		m.seen[id+"\x00"+key] = true
	}
	if m.perID[id] >= maxPerFinding {
		return
	}
	m.perID[id]++
	m.pending = append(m.pending, m.d.cat.New(id, detail, off))
}

func (m *machine) commit() {
	m.flushNested()
	m.res.Findings = append(m.res.Findings, m.pending...)
	m.pending = nil
}

func (m *machine) resetStream() {
	m.stack = m.stack[:0]
	m.marks = 0
	m.memo = map[int64]value{}
	m.memoFull = false
	m.retained = 0
	m.pending = nil
	m.streamOps = 0
	m.streamGlobs = 0
	m.streamDanger = ""
	m.streamProto = 0
	m.depthFlagged = false
	m.brk = nil
	m.tracked = 0
	m.nestedImports = nil
	m.nestedCalls = nil
}

var errLimit = errors.New("analysis limit reached")

func (m *machine) run(ctx context.Context) error {
	for stream := 0; ; stream++ {
		start := m.src.off
		if stream > 0 {
			head, err := m.src.peek(64)
			if err != nil {
				return fmt.Errorf("pickle: %w", err)
			}
			if len(head) == 0 {
				return nil
			}
			// Whatever the next bytes look like, a loader that calls
			// pickle.load again (torch's legacy format does, five times)
			// reads them as a stream: decode them; a stream that breaks
			// before importing anything is trailing data.
			m.later = true
			if stream >= m.opts.MaxStreams {
				m.add("PKL-011", fmt.Sprintf("more than %d concatenated pickle streams; the rest was not analysed", m.opts.MaxStreams), start, "")
				m.commit()
				m.res.Complete = false
				return nil
			}
		}
		m.resetStream()
		end, err := m.runStream(ctx)
		if err != nil {
			return fmt.Errorf("pickle: %w", err)
		}
		if m.streamProto > m.res.Protocol {
			m.res.Protocol = m.streamProto
		}
		switch end {
		case endStop:
			m.res.Streams++
			m.commit()
			if m.afterStop != nil {
				if done, err := m.afterStop(stream, m.last); err != nil || done {
					m.commit()
					return err
				}
			}
			continue
		case endEmpty:
			if stream == 0 {
				m.add("PKL-014", "the data is empty", 0, "")
				m.res.Complete = false
			}
			m.commit()
			return nil
		case endLimit:
			m.res.Streams++
			m.res.Complete = false
			m.commit()
			return nil
		}
		// endBreak
		b := m.brk
		if m.onBreak != nil {
			m.onBreak(b)
		}
		if stream > 0 && m.streamGlobs == 0 {
			m.pending = nil
			m.add("PKL-013", fmt.Sprintf("data from offset %d on is not a further pickle stream (%s); nothing in it imports code", start, b.msg), start, "")
			m.commit()
			return nil
		}
		m.res.Complete = false
		switch {
		case stream == 0 && m.streamOps == 0:
			m.add("PKL-014", b.msg, b.off, "")
		case b.kind == breakBadOpcode:
			m.add("PKL-007", b.msg, b.off, "")
		case b.kind == breakTruncated:
			m.add("PKL-008", b.msg, b.off, "")
		default:
			m.add("PKL-010", b.msg, b.off, "")
		}
		if m.streamDanger != "" {
			m.add("PKL-009", fmt.Sprintf("%s is imported before the stream breaks at offset %d (%s)", m.streamDanger, b.off, b.msg), b.off, "")
		}
		if m.streamOps > 0 {
			m.res.Streams++
		}
		m.commit()
		return nil
	}
}

func (m *machine) runStream(ctx context.Context) (endKind, error) {
	for {
		in, err := m.src.next()
		if err != nil {
			var b *streamBreak
			var re *readError
			switch {
			case errors.Is(err, io.EOF):
				if m.streamOps == 0 {
					return endEmpty, nil
				}
				m.brk = &streamBreak{kind: breakTruncated, off: m.src.off, msg: fmt.Sprintf("data ends at offset %d before the stream's STOP opcode", m.src.off)}
				return endBreak, nil
			case errors.As(err, &b):
				m.brk = b
				return endBreak, nil
			case errors.As(err, &re):
				return 0, err
			}
			return 0, err
		}
		m.streamOps++
		m.res.Opcodes++
		if m.res.Opcodes&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		}
		if m.res.Opcodes > m.opts.MaxOpcodes {
			m.add("PKL-011", fmt.Sprintf("more than %d opcodes; the rest was not analysed", m.opts.MaxOpcodes), in.off, "")
			return endLimit, nil
		}
		if in.info.proto > m.streamProto {
			m.streamProto = in.info.proto
		}
		marks := m.marks
		m.note = ""
		err = m.exec(&in)
		if m.trace != nil {
			m.trace(in, marks, m.note)
		}
		if err != nil {
			var b *streamBreak
			switch {
			case errors.Is(err, errStop):
				return endStop, nil
			case errors.Is(err, errLimit):
				return endLimit, nil
			case errors.As(err, &b):
				m.brk = b
				return endBreak, nil
			}
			return 0, err
		}
	}
}

var errStop = errors.New("STOP")

func (m *machine) malformed(in *instr, format string, a ...any) error {
	return &streamBreak{kind: breakMalformed, off: in.off, msg: fmt.Sprintf("%s at offset %d: ", in.info.name, in.off) + fmt.Sprintf(format, a...)}
}

func (m *machine) push(in *instr, v value) error {
	if len(m.stack) >= m.opts.MaxStack {
		m.add("PKL-011", fmt.Sprintf("the stack grows beyond %d entries at offset %d; the rest was not analysed", m.opts.MaxStack, in.off), in.off, "")
		return errLimit
	}
	if int(v.depth) > m.opts.MaxDepth {
		m.flagDepth(in, int(v.depth))
	}
	m.stack = append(m.stack, v)
	return nil
}

func (m *machine) flagDepth(in *instr, d int) {
	if m.depthFlagged {
		return
	}
	m.depthFlagged = true
	m.add("PKL-012", fmt.Sprintf("nesting reaches %d levels at offset %d (limit %d)", d, in.off, m.opts.MaxDepth), in.off, "")
}

func (m *machine) pop(in *instr) (value, error) {
	n := len(m.stack)
	if n == 0 || m.stack[n-1].k == vMark {
		return value{}, m.malformed(in, "stack underflow")
	}
	v := m.stack[n-1]
	m.stack = m.stack[:n-1]
	return v, nil
}

func (m *machine) top(in *instr) (*value, error) {
	n := len(m.stack)
	if n == 0 || m.stack[n-1].k == vMark {
		return nil, m.malformed(in, "stack underflow")
	}
	return &m.stack[n-1], nil
}

// popMark removes the items above the innermost MARK and the MARK itself,
// returning how many there were, their deepest nesting and the first one.
func (m *machine) popMark(in *instr) (n int, depth int32, first value, err error) {
	i := len(m.stack) - 1
	for i >= 0 && m.stack[i].k != vMark {
		if m.stack[i].depth > depth {
			depth = m.stack[i].depth
		}
		i--
	}
	if i < 0 {
		return 0, 0, value{}, m.malformed(in, "no MARK on the stack")
	}
	n = len(m.stack) - i - 1
	if n > 0 {
		first = m.stack[i+1]
	}
	m.stack = m.stack[:i]
	m.marks--
	return n, depth, first, nil
}

func (m *machine) nest(in *instr, t *value, childDepth int32) {
	if childDepth+1 > t.depth {
		t.depth = childDepth + 1
		if int(t.depth) > m.opts.MaxDepth {
			m.flagDepth(in, int(t.depth))
		}
	}
}

func (m *machine) memoPut(in *instr, key int64, v value) {
	if _, ok := m.memo[key]; !ok && len(m.memo) >= m.opts.MaxMemo {
		if !m.memoFull {
			m.memoFull = true
			m.add("PKL-011", fmt.Sprintf("more than %d memo entries at offset %d; later memo references are not tracked", m.opts.MaxMemo, in.off), in.off, "memo")
		}
		return
	}
	if v.k == vStr {
		if m.retained+int64(len(v.s)) > maxRetained {
			v.s, v.known = "", false
		}
		m.retained += int64(len(v.s))
	}
	m.memo[key] = v
}

func (m *machine) memoGet(in *instr, key int64) error {
	v, ok := m.memo[key]
	if !ok {
		if m.memoFull {
			v = value{k: vAny, g: -1}
		} else {
			return m.malformed(in, "memo key %d was never stored", key)
		}
	}
	return m.push(in, v)
}

// importName records an import and returns its value.
func (m *machine) importName(in *instr, module, name string, cls Class, why string, unresolved bool) value {
	full := module + "." + name
	m.streamGlobs++
	key := full
	if unresolved {
		key = "\x00" + full
	}
	idx, ok := m.globalIdx[key]
	if !ok && len(m.res.Globals) < maxGlobals {
		idx = len(m.res.Globals)
		m.globalIdx[key] = idx
		m.res.Globals = append(m.res.Globals, Global{Module: module, Name: name, Offset: in.off, Opcode: in.info.name, Class: cls, Reason: why, Unresolved: unresolved})
		ok = true
	}
	g := int32(-1)
	if ok {
		g = int32(idx)
		m.res.Globals[idx].Count++
	}
	if cls == Dangerous && embeddedLoaders[full] && g >= 0 && !unresolved {
		// Judged by what it is called with: see flushNested.
		if m.nestedImports == nil {
			m.nestedImports = map[int32]int{}
		}
		m.nestedImports[g]++
		if m.trace != nil {
			m.note = fmt.Sprintf("-> %s [%s]", full, cls)
		}
		return value{k: vGlobal, cls: cls, g: g, s: full}
	}
	switch cls {
	case Dangerous:
		m.add("PKL-001", fmt.Sprintf("%s at offset %d imports %s: %s", in.info.name, in.off, full, why), in.off, key)
		if m.streamDanger == "" {
			m.streamDanger = full
		}
	case Unknown:
		if !unresolved {
			m.add("PKL-002", fmt.Sprintf("%s at offset %d imports %s", in.info.name, in.off, full), in.off, key)
		}
	}
	if m.trace != nil {
		m.note = fmt.Sprintf("-> %s [%s]", full, cls)
	}
	return value{k: vGlobal, cls: cls, g: g, s: full}
}

// embeddedLoaders are callables that load an embedded torch archive from
// the bytes they are given: torch pickles tensors with plain pickle this
// way. Called with literal bytes, the archive is opened and judged by its
// contents (Result.Embedded); imported for anything else, they are
// dangerous as listed.
var embeddedLoaders = map[string]bool{"torch.storage._load_from_bytes": true}

// maxEmbedded bounds the embedded archives listed in a Result.
const maxEmbedded = 64

// Embedded is a byte range of the stream that a loader opens as a file of
// its own (torch.storage._load_from_bytes: a torch.save archive).
type Embedded struct {
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
	Via    string `json:"via"`
	// Encoding is "" when the range holds the bytes as they are, and
	// "latin1-of-utf8" when it holds a UTF-8 string whose characters are
	// the bytes (protocols 0-2 pickle bytes as _codecs.encode(s, 'latin1')).
	Encoding string `json:"encoding,omitempty"`
}

// flushNested reports embedded-archive loaders that were imported more
// often than they were called with literal bytes.
func (m *machine) flushNested() {
	for g, n := range m.nestedImports {
		if m.nestedCalls[g] >= n {
			continue
		}
		gl := m.res.Globals[g]
		m.add("PKL-001", fmt.Sprintf("%s at offset %d imports %s and does not call it with literal bytes: %s", gl.Opcode, gl.Offset, gl.Module+"."+gl.Name, gl.Reason), gl.Offset, gl.Module+"."+gl.Name)
		if m.streamDanger == "" {
			m.streamDanger = gl.Module + "." + gl.Name
		}
	}
	m.nestedImports, m.nestedCalls = nil, nil
}

// callWith is call for REDUCE, where the arguments are known.
func (m *machine) callWith(in *instr, fn, args value) value {
	// _codecs.encode(s, 'latin1'): bytes as protocols 0-2 write them.
	if fn.k == vGlobal && fn.cls == Safe && fn.s == "_codecs.encode" && args.k == vTuple && args.c != nil && len(args.c.items) == 2 {
		str, codec := args.c.items[0], args.c.items[1]
		if str.k == vStr && str.enc == encUTF8 && codec.k == vStr && codec.known && (codec.s == "latin1" || codec.s == "latin-1" || codec.s == "iso-8859-1") {
			m.call(in, fn)
			return value{k: vBytes, n: str.n, ln: str.ln, enc: encLatin1}
		}
	}
	if fn.k == vGlobal && embeddedLoaders[fn.s] && fn.g >= 0 && args.k == vTuple && args.c != nil && len(args.c.items) == 1 && args.c.items[0].k == vBytes {
		b := args.c.items[0]
		if m.nestedCalls == nil {
			m.nestedCalls = map[int32]int{}
		}
		m.nestedCalls[fn.g]++
		if len(m.res.Embedded) < maxEmbedded {
			e := Embedded{Offset: b.n, Length: b.ln, Via: fn.s}
			if b.enc == encLatin1 {
				e.Encoding = "latin1-of-utf8"
			}
			m.res.Embedded = append(m.res.Embedded, e)
		}
		m.calls++
		return value{k: vCall, g: -1, s: fn.s + "(...)"}
	}
	r := m.call(in, fn)
	if fn.k == vGlobal {
		if c := m.track(nil); c != nil {
			c.fn, c.args = fn.s, args
			r.c = c
		}
	}
	return r
}

// call records that fn is called by the opcode and returns the result.
func (m *machine) call(in *instr, fn value) value {
	m.calls++
	if fn.k == vGlobal {
		if fn.g >= 0 {
			m.res.Globals[fn.g].Called = true
		}
		if fn.cls == Unknown {
			m.add("PKL-004", fmt.Sprintf("%s at offset %d calls %s", in.info.name, in.off, fn.s), in.off, fn.s)
		}
	} else {
		m.add("PKL-004", fmt.Sprintf("%s at offset %d calls %s, which is not an imported name", in.info.name, in.off, fn.describe()), in.off, "")
	}
	d := fn.describe()
	if m.trace != nil && m.note == "" {
		m.note = "calls " + d
	}
	if len(d) > 200 {
		d = d[:200] + "..."
	}
	return value{k: vCall, g: -1, s: d}
}

func (m *machine) exec(in *instr) error {
	a := in.arg
	switch in.code {
	case opMark:
		m.marks++
		if m.marks > m.opts.MaxDepth {
			m.flagDepth(in, m.marks)
		}
		return m.push(in, value{k: vMark})
	case opStop:
		v, err := m.pop(in)
		if err != nil {
			return err
		}
		m.last = v
		return errStop
	case opPop:
		n := len(m.stack)
		if n == 0 {
			return m.malformed(in, "stack underflow")
		}
		if m.stack[n-1].k == vMark {
			m.marks--
		}
		m.stack = m.stack[:n-1]
	case opPopMark:
		if _, _, _, err := m.popMark(in); err != nil {
			return err
		}
	case opDup:
		t, err := m.top(in)
		if err != nil {
			return err
		}
		return m.push(in, *t)
	case opFloat, opBinFloat:
		return m.push(in, value{k: vFloat})
	case opInt, opLong:
		if in.code == opInt && (a.text == "00" || a.text == "01") {
			return m.push(in, value{k: vBool, n: a.n, known: true})
		}
		return m.push(in, value{k: vInt, n: a.n, known: a.text != "" && a.n != math.MaxInt64 && a.n != -math.MaxInt64})
	case opBinInt, opBinInt1, opBinInt2:
		return m.push(in, value{k: vInt, n: a.n, known: true})
	case opLong1, opLong4:
		v := value{k: vInt}
		if a.full && a.length <= 8 {
			v.n, v.known = leSigned(a.s), true
		}
		return m.push(in, v)
	case opNone:
		return m.push(in, value{k: vNone})
	case opNewTrue, opNewFalse:
		return m.push(in, value{k: vBool, n: int64(btoi(in.code == opNewTrue)), known: true})
	case opBinUnicode, opShortBinUni, opBinUnicode8:
		// Where the UTF-8 payload lies, for _codecs.encode(s, 'latin1'):
		// how protocols 0-2 write bytes.
		return m.push(in, value{k: vStr, s: a.s, known: a.full, n: a.dataOff, ln: a.length, enc: encUTF8})
	case opString, opBinString, opShortBinString, opUnicode:
		return m.push(in, value{k: vStr, s: a.s, known: a.full})
	case opBinBytes, opShortBinBytes, opBinBytes8, opByteArray8:
		return m.push(in, value{k: vBytes, n: a.dataOff, ln: a.length})
	case opNextBuffer:
		return m.push(in, value{k: vAny})
	case opReadonlyBuffer:
		if _, err := m.top(in); err != nil {
			return err
		}
	case opPersID:
		return m.push(in, value{k: vPersist})
	case opBinPersID:
		if _, err := m.pop(in); err != nil {
			return err
		}
		return m.push(in, value{k: vPersist})
	case opReduce:
		args, err := m.pop(in)
		if err != nil {
			return err
		}
		fn, err := m.pop(in)
		if err != nil {
			return err
		}
		return m.push(in, m.callWith(in, fn, args))
	case opBuild:
		state, err := m.pop(in)
		if err != nil {
			return err
		}
		obj, err := m.top(in)
		if err != nil {
			return err
		}
		if obj.k == vCall && obj.c != nil && !obj.c.built {
			obj.c.state, obj.c.built = state, true
			if obj.c.fn == joblibWrapper {
				return m.joblibArray(in, state)
			}
		}
	case opGlobal:
		if (m.sniff || m.later) && (!identifierPath(a.s) || !identifierPath(a.name)) {
			return m.malformed(in, "not an importable name")
		}
		return m.push(in, m.global(in, a))
	case opInst:
		if (m.sniff || m.later) && (!identifierPath(a.s) || !identifierPath(a.name)) {
			return m.malformed(in, "not an importable name")
		}
		if _, _, _, err := m.popMark(in); err != nil {
			return err
		}
		g := m.global(in, a)
		m.add("PKL-006", fmt.Sprintf("INST at offset %d instantiates %s", in.off, g.s), in.off, "INST")
		return m.push(in, m.call(in, g))
	case opObj:
		n, _, cls, err := m.popMark(in)
		if err != nil {
			return err
		}
		if n == 0 {
			return m.malformed(in, "no class to instantiate")
		}
		m.add("PKL-006", fmt.Sprintf("OBJ at offset %d instantiates %s", in.off, cls.describe()), in.off, "OBJ")
		return m.push(in, m.call(in, cls))
	case opNewObj:
		args, err := m.pop(in)
		if err != nil {
			return err
		}
		cls, err := m.pop(in)
		if err != nil {
			return err
		}
		r := m.call(in, cls)
		if cls.k == vGlobal {
			if c := m.track(nil); c != nil {
				c.fn, c.args = cls.s, args
				r.c = c
			}
		}
		return m.push(in, r)
	case opNewObjEx:
		for range 2 {
			if _, err := m.pop(in); err != nil {
				return err
			}
		}
		cls, err := m.pop(in)
		if err != nil {
			return err
		}
		return m.push(in, m.call(in, cls))
	case opStackGlobal:
		name, err := m.pop(in)
		if err != nil {
			return err
		}
		module, err := m.pop(in)
		if err != nil {
			return err
		}
		return m.stackGlobal(in, module, name)
	case opExt1, opExt2, opExt4:
		m.add("PKL-005", fmt.Sprintf("%s at offset %d imports extension code %d", in.info.name, in.off, a.n), in.off, strconv.FormatInt(a.n, 10))
		return m.push(in, m.importName(in, "copyreg extension", strconv.FormatInt(a.n, 10), Unknown, "resolved through the copyreg extension registry of the loading process", true))
	case opAppend:
		v, err := m.pop(in)
		if err != nil {
			return err
		}
		t, err := m.top(in)
		if err != nil {
			return err
		}
		m.nest(in, t, v.depth)
		m.addItems(t, v)
	case opAppends, opSetItems, opAddItems:
		items := m.itemsAboveMark()
		n, d, _, err := m.popMark(in)
		if err != nil {
			return err
		}
		if in.code == opSetItems && n%2 != 0 {
			return m.malformed(in, "odd number of items for key/value pairs")
		}
		t, err := m.top(in)
		if err != nil {
			return err
		}
		if n > 0 {
			m.nest(in, t, d)
		}
		if in.code != opAddItems {
			m.addItems(t, items...)
		}
	case opSetItem:
		v, err := m.pop(in)
		if err != nil {
			return err
		}
		k, err := m.pop(in)
		if err != nil {
			return err
		}
		t, err := m.top(in)
		if err != nil {
			return err
		}
		m.nest(in, t, max(v.depth, k.depth))
		m.addItems(t, k, v)
	case opList, opTuple, opDict, opFrozenSet:
		items := m.itemsAboveMark()
		n, d, _, err := m.popMark(in)
		if err != nil {
			return err
		}
		if in.code == opDict && n%2 != 0 {
			return m.malformed(in, "odd number of items for key/value pairs")
		}
		k := map[op]kind{opList: vList, opTuple: vTuple, opDict: vDict, opFrozenSet: vSet}[in.code]
		v := value{k: k}
		if n > 0 {
			v.depth = d + 1
		}
		if k != vSet {
			v.c = m.track(items)
		}
		return m.push(in, v)
	case opEmptyList:
		return m.push(in, value{k: vList, c: m.track(nil)})
	case opEmptyTuple:
		return m.push(in, value{k: vTuple, c: m.track(nil)})
	case opEmptyDict:
		return m.push(in, value{k: vDict, c: m.track(nil)})
	case opEmptySet:
		return m.push(in, value{k: vSet})
	case opTuple1, opTuple2, opTuple3:
		n := int(in.code-opTuple1) + 1
		var d int32
		items := make([]value, n)
		for i := range n {
			v, err := m.pop(in)
			if err != nil {
				return err
			}
			d = max(d, v.depth)
			items[n-1-i] = v
		}
		return m.push(in, value{k: vTuple, depth: d + 1, c: m.track(items)})
	case opPut, opBinPut, opLongBinPut:
		t, err := m.top(in)
		if err != nil {
			return err
		}
		m.memoPut(in, a.n, *t)
	case opMemoize:
		t, err := m.top(in)
		if err != nil {
			return err
		}
		m.memoPut(in, int64(len(m.memo)), *t)
	case opGet, opBinGet, opLongBinGet:
		return m.memoGet(in, a.n)
	case opProto:
		if a.n > 5 {
			return m.malformed(in, "unsupported protocol %d", a.n)
		}
		if int(a.n) > m.streamProto {
			m.streamProto = int(a.n)
		}
	case opFrame:
		return m.src.frame(a.n, in)
	default:
		return m.malformed(in, "opcode not handled")
	}
	return nil
}

// global resolves a GLOBAL or INST operand.
func (m *machine) global(in *instr, a operand) value {
	if !a.full || !a.full2 {
		return m.unresolved(in, a.s, a.full, "a module or name line too long to track")
	}
	cls, why := m.d.lists.classify(a.s, a.name)
	return m.importName(in, a.s, a.name, cls, why, false)
}

func (m *machine) stackGlobal(in *instr, module, name value) error {
	for _, v := range []value{module, name} {
		switch v.k {
		case vBytes, vInt, vFloat, vBool, vNone, vList, vDict, vTuple, vSet:
			return m.malformed(in, "STACK_GLOBAL needs two strings, got %s", kindNames[v.k])
		}
	}
	if module.k == vStr && module.known && name.k == vStr && name.known {
		cls, why := m.d.lists.classify(module.s, name.s)
		return m.push(in, m.importName(in, module.s, name.s, cls, why, false))
	}
	var what string
	switch {
	case !(module.k == vStr && module.known):
		what = "module is " + module.describe()
	default:
		what = "name is " + name.describe()
	}
	return m.push(in, m.unresolved(in, module.s, module.k == vStr && module.known, what))
}

// unresolved records an import whose module or name is not known.
func (m *machine) unresolved(in *instr, module string, moduleKnown bool, what string) value {
	m.add("PKL-003", fmt.Sprintf("%s at offset %d: %s", in.info.name, in.off, what), in.off, "")
	if !moduleKnown {
		module = "?"
	}
	cls, why := Unknown, "module or name not statically known: "+what
	if moduleKnown {
		if w, ok := m.d.lists.moduleDangerous(module); ok {
			cls, why = Dangerous, w
		}
	}
	return m.importName(in, module, "?", cls, why, true)
}

// identifierPath reports whether s looks like a dotted Python identifier.
func identifierPath(s string) bool {
	if s == "" {
		return false
	}
	prevDot := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if prevDot {
				return false
			}
			prevDot = true
			continue
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80:
		case c >= '0' && c <= '9':
			if prevDot {
				return false
			}
		default:
			return false
		}
		prevDot = false
	}
	return !prevDot
}

// itemsAboveMark copies the values above the innermost MARK when they are
// few enough to track (nil otherwise).
func (m *machine) itemsAboveMark() []value {
	i := len(m.stack) - 1
	for i >= 0 && m.stack[i].k != vMark {
		i--
		if len(m.stack)-1-i > 64 {
			return nil
		}
	}
	if i < 0 || i == len(m.stack)-1 {
		return nil
	}
	return append([]value(nil), m.stack[i+1:]...)
}

// addItems appends to a tracked list or dict (untracking it when the
// budget runs out or the items are not known).
func (m *machine) addItems(t *value, items ...value) {
	if t.c == nil || (t.k != vList && t.k != vDict) {
		return
	}
	if len(items) == 0 {
		return
	}
	if m.tracked+len(items) > maxTracked || len(t.c.items) > 4096 {
		t.c = nil
		return
	}
	m.tracked += len(items)
	t.c.items = append(t.c.items, items...)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// leSigned decodes a little-endian two's-complement integer of at most 8
// bytes (LONG1/LONG4 operands).
func leSigned(b string) int64 {
	if b == "" {
		return 0
	}
	var u uint64
	for i := len(b) - 1; i >= 0; i-- {
		u = u<<8 | uint64(b[i])
	}
	if n := len(b); n < 8 && b[n-1]&0x80 != 0 {
		u |= ^uint64(0) << (8 * n)
	}
	return int64(u)
}
