package safetensors

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/llmfence/llmfence/internal/verdict"
)

// Bounds of the ONNX reader.
const (
	onnxMaxDepth   = 64
	onnxMaxString  = 4096
	onnxMaxRecords = 10_000
)

// ONNXInfo is what ScanONNX learned about a model.
type ONNXInfo struct {
	IRVersion       int64         `json:"ir_version"`
	ProducerName    string        `json:"producer_name,omitempty"`
	ProducerVersion string        `json:"producer_version,omitempty"`
	Domain          string        `json:"domain,omitempty"`
	ModelVersion    int64         `json:"model_version,omitempty"`
	Opsets          []Opset       `json:"opsets,omitempty"`
	Nodes           int           `json:"nodes"`
	Tensors         int           `json:"tensors"`
	ExternalData    []ExternalRef `json:"external_data,omitempty"`
	CustomDomains   []string      `json:"custom_domains,omitempty"`
}

// Opset is one opset_import entry.
type Opset struct {
	Domain  string `json:"domain"`
	Version int64  `json:"version"`
}

// ExternalRef is one tensor stored outside the model file.
type ExternalRef struct {
	Tensor   string `json:"tensor"`
	Location string `json:"location"`
	Offset   string `json:"offset,omitempty"`
	Length   string `json:"length,omitempty"`
}

// LooksONNX reports whether head plausibly starts an ONNX ModelProto:
// field 1 (ir_version) as a small varint followed by another known field.
func LooksONNX(head []byte) bool {
	if len(head) < 3 || head[0] != 0x08 || head[1] == 0 || head[1] > 20 {
		return false
	}
	switch head[2] {
	case 0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72: // fields 2,3,4,5,6,7,8,14
		return true
	}
	return false
}

// ScanONNX reads an ONNX ModelProto of size bytes from r as a stream and
// reports external data paths that escape the model directory, custom
// operator domains and malformed protobuf. Tensor payloads are skipped, not
// buffered. The error is for I/O failures, cancellation and the embedded
// checks failing to load.
func ScanONNX(ctx context.Context, r io.Reader, size int64) (*ONNXInfo, []verdict.Finding, error) {
	d, err := loaded()
	if err != nil {
		return nil, nil, err
	}
	s := &onnxScan{ctx: ctx, r: bufio.NewReaderSize(r, 64<<10), fs: &findings{cat: d.onnx}, info: &ONNXInfo{}, rules: d.rules}
	err = s.message(msgModel, size, 0)
	var pe *pbError
	switch {
	case errors.As(err, &pe):
		s.fs.add("ONNX-002", pe.msg, pe.off)
	case err != nil:
		return nil, nil, err
	}
	return s.info, s.fs.list, nil
}

type msgKind int

const (
	msgModel msgKind = iota
	msgGraph
	msgNode
	msgAttribute
	msgTensor
	msgSparse
	msgTraining
	msgFunction
	msgEntry
	msgOpset
	msgOther
)

// pbError is a malformed-input error (a finding, not an I/O failure).
type pbError struct {
	msg string
	off int64
}

func (e *pbError) Error() string { return e.msg }

type onnxScan struct {
	ctx   context.Context
	r     *bufio.Reader
	pos   int64
	fs    *findings
	info  *ONNXInfo
	rules *ruleSet
	seenD map[string]bool
	// pending holds the external_data entries of the tensor being read
	// (entries finish before their parent tensor does).
	pending [][2]string
}

func (s *onnxScan) bad(format string, a ...any) error {
	return &pbError{msg: fmt.Sprintf(format, a...), off: s.pos}
}

func (s *onnxScan) readByte() (byte, error) {
	b, err := s.r.ReadByte()
	if err == io.EOF {
		return 0, s.bad("truncated at offset %d", s.pos)
	}
	if err != nil {
		return 0, fmt.Errorf("read ONNX model: %w", err)
	}
	s.pos++
	return b, nil
}

func (s *onnxScan) varint() (uint64, error) {
	var v uint64
	for i := 0; i < 10; i++ {
		b, err := s.readByte()
		if err != nil {
			return 0, err
		}
		v |= uint64(b&0x7F) << (7 * i)
		if b < 0x80 {
			return v, nil
		}
	}
	return 0, s.bad("varint longer than 10 bytes at offset %d", s.pos)
}

func (s *onnxScan) skip(n int64) error {
	k, err := io.CopyN(io.Discard, s.r, n)
	s.pos += k
	if err == io.EOF || (err == nil && k < n) {
		return s.bad("truncated at offset %d", s.pos)
	}
	if err != nil {
		return fmt.Errorf("read ONNX model: %w", err)
	}
	return nil
}

// str reads an n-byte string field, keeping at most onnxMaxString bytes.
func (s *onnxScan) str(n int64) (string, error) {
	keep := min(n, onnxMaxString)
	b := make([]byte, keep)
	k, err := io.ReadFull(s.r, b)
	s.pos += int64(k)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return "", s.bad("truncated string at offset %d", s.pos)
	}
	if err != nil {
		return "", fmt.Errorf("read ONNX model: %w", err)
	}
	if n > keep {
		if err := s.skip(n - keep); err != nil {
			return "", err
		}
	}
	return string(b), nil
}

// child says which message kind a length-delimited field holds.
func child(parent msgKind, field uint64) msgKind {
	switch parent {
	case msgModel:
		switch field {
		case 7:
			return msgGraph
		case 8:
			return msgOpset
		case 20:
			return msgTraining
		case 25:
			return msgFunction
		}
	case msgGraph:
		switch field {
		case 1:
			return msgNode
		case 5:
			return msgTensor
		case 15:
			return msgSparse
		}
	case msgNode:
		if field == 5 {
			return msgAttribute
		}
	case msgAttribute:
		switch field {
		case 5, 10:
			return msgTensor
		case 6, 11:
			return msgGraph
		case 22, 23:
			return msgSparse
		}
	case msgTensor:
		if field == 13 {
			return msgEntry
		}
	case msgSparse:
		if field == 1 || field == 2 {
			return msgTensor
		}
	case msgTraining:
		if field == 1 || field == 2 {
			return msgGraph
		}
	case msgFunction:
		switch field {
		case 7:
			return msgNode
		case 9:
			return msgOpset
		}
	}
	return msgOther
}

// msgState collects the fields of one message the checks need.
type msgState struct {
	strs map[uint64]string
	ints map[uint64]int64
}

func (s *onnxScan) message(kind msgKind, length int64, depth int) error {
	if depth > onnxMaxDepth {
		return s.bad("messages nested deeper than %d at offset %d", onnxMaxDepth, s.pos)
	}
	if err := s.ctx.Err(); err != nil {
		return err
	}
	end := s.pos + length
	st := &msgState{}
	for s.pos < end {
		tag, err := s.varint()
		if err != nil {
			return err
		}
		field, wt := tag>>3, tag&7
		if field == 0 {
			return s.bad("field number 0 at offset %d", s.pos)
		}
		switch wt {
		case 0:
			v, err := s.varint()
			if err != nil {
				return err
			}
			if st.ints == nil {
				st.ints = map[uint64]int64{}
			}
			st.ints[field] = int64(v)
		case 1:
			err = s.skip(8)
		case 5:
			err = s.skip(4)
		case 2:
			n, err := s.varint()
			if err != nil {
				return err
			}
			if n > uint64(end-s.pos) {
				return s.bad("field %d of %d bytes overruns its message at offset %d", field, n, s.pos)
			}
			switch ck := child(kind, field); {
			case ck != msgOther:
				if err := s.message(ck, int64(n), depth+1); err != nil {
					return err
				}
			case s.wantString(kind, field):
				v, err := s.str(int64(n))
				if err != nil {
					return err
				}
				if st.strs == nil {
					st.strs = map[uint64]string{}
				}
				st.strs[field] = v
			default:
				if err := s.skip(int64(n)); err != nil {
					return err
				}
			}
		default:
			return s.bad("wire type %d at offset %d", wt, s.pos)
		}
		if err != nil {
			return err
		}
	}
	if s.pos != end {
		return s.bad("message overruns its length at offset %d", s.pos)
	}
	s.finish(kind, st)
	return nil
}

// wantString says which string fields are kept.
func (s *onnxScan) wantString(kind msgKind, field uint64) bool {
	switch kind {
	case msgModel:
		return field == 2 || field == 3 || field == 4
	case msgNode:
		return field == 7
	case msgTensor:
		return field == 8
	case msgEntry, msgOpset:
		return field == 1 || field == 2
	}
	return false
}

// finish records what a completed message means.
func (s *onnxScan) finish(kind msgKind, st *msgState) {
	switch kind {
	case msgModel:
		s.info.IRVersion = st.ints[1]
		s.info.ModelVersion = st.ints[5]
		s.info.ProducerName, s.info.ProducerVersion, s.info.Domain = st.strs[2], st.strs[3], st.strs[4]
	case msgOpset:
		d := st.strs[1]
		if len(s.info.Opsets) < onnxMaxRecords {
			s.info.Opsets = append(s.info.Opsets, Opset{Domain: d, Version: st.ints[2]})
		}
		s.domain(d)
	case msgNode:
		s.info.Nodes++
		s.domain(st.strs[7])
	case msgEntry:
		s.pending = append(s.pending, [2]string{st.strs[1], st.strs[2]})
	case msgTensor:
		entries := s.pending
		s.pending = nil
		s.info.Tensors++
		if len(entries) == 0 && st.ints[14] != 1 {
			return
		}
		s.external(st.strs[8], entries, st.ints[14] == 1)
	}
}

func (s *onnxScan) domain(d string) {
	if slices.Contains(s.rules.ONNXDomains, d) {
		return
	}
	if s.seenD == nil {
		s.seenD = map[string]bool{}
	}
	if s.seenD[d] || len(s.seenD) >= onnxMaxRecords {
		return
	}
	s.seenD[d] = true
	s.info.CustomDomains = append(s.info.CustomDomains, d)
	s.fs.add("ONNX-004", fmt.Sprintf("domain %q", clip(d)), -1)
}

// external checks one tensor's external_data entries.
func (s *onnxScan) external(tensor string, entries [][2]string, external bool) {
	ref := ExternalRef{Tensor: tensor}
	hasLoc := false
	for _, e := range entries {
		switch e[0] {
		case "location":
			ref.Location, hasLoc = e[1], true
		case "offset":
			ref.Offset = e[1]
		case "length":
			ref.Length = e[1]
		}
	}
	if len(s.info.ExternalData) < onnxMaxRecords {
		s.info.ExternalData = append(s.info.ExternalData, ref)
	}
	if !hasLoc || ref.Location == "" {
		s.fs.add("ONNX-003", fmt.Sprintf("tensor %q: external data without a location", clip(tensor)), -1)
		return
	}
	if !external {
		s.fs.add("ONNX-003", fmt.Sprintf("tensor %q: external_data entries but data_location is not EXTERNAL", clip(tensor)), -1)
	}
	for _, v := range []struct{ k, v string }{{"offset", ref.Offset}, {"length", ref.Length}} {
		if v.v == "" {
			continue
		}
		if n, err := strconv.ParseInt(v.v, 10, 64); err != nil || n < 0 {
			s.fs.add("ONNX-003", fmt.Sprintf("tensor %q: %s %q is not a non-negative integer", clip(tensor), v.k, clip(v.v)), -1)
		}
	}
	if why := escapes(ref.Location); why != "" {
		s.fs.add("ONNX-001", fmt.Sprintf("tensor %q: location %q (%s)", clip(tensor), clip(ref.Location), why), -1)
	}
}

// escapes says how a relative-path claim escapes its directory, "" if not.
func escapes(loc string) string {
	n := strings.ReplaceAll(loc, "\\", "/")
	switch {
	case strings.ContainsRune(loc, 0):
		return "contains a NUL byte"
	case strings.HasPrefix(n, "/"):
		return "absolute path"
	case len(n) >= 2 && n[1] == ':':
		return "drive-letter path"
	case strings.Contains(n, "://"):
		return "URL"
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "'..' component"
		}
	}
	return ""
}
