package spool

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"

	"github.com/llmfence/llmfence/internal/store"
)

// MaxRecordBytes bounds one encoded record (payload). The gateway cuts the
// long text fields (route, error) well below it; a record that would still
// be larger has its strings shortened further by encode.
const MaxRecordBytes = 64 << 10

// maxField bounds one string field in a record.
const maxField = 8 << 10

const (
	frameHeader   = 8
	recordVersion = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt: the bytes at this position are not a valid frame.
var errCorrupt = errors.New("spool: invalid record frame")

// appendFrame appends rec as one frame to dst.
func appendFrame(dst []byte, rec *store.UsageRecord) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeader)...)
	dst = append(dst, recordVersion)
	dst = binary.AppendVarint(dst, rec.Time.UnixNano())
	for _, s := range [...]string{rec.KeyID, rec.KeyName, rec.ClientIP, rec.Method, rec.Route, rec.Model,
		rec.Error, rec.ClientCert} {
		if len(s) > maxField {
			s = s[:maxField]
		}
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	for _, n := range [...]int64{int64(rec.Status), rec.PromptTokens, rec.CompletionTokens, rec.LatencyMS,
		rec.BytesIn, rec.BytesOut, rec.Requests} {
		dst = binary.AppendVarint(dst, n)
	}
	var flags byte
	if rec.Truncated {
		flags |= 1
	}
	if rec.ClientGone {
		flags |= 2
	}
	dst = append(dst, flags)
	payload := dst[start+frameHeader:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, castagnoli))
	return dst
}

// frameLen reads the frame header at the start of b: the whole frame's
// length, or errCorrupt, or 0 with no error when b is shorter than a
// header.
func frameLen(b []byte) (int, error) {
	if len(b) < frameHeader {
		return 0, nil
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > MaxRecordBytes {
		return 0, errCorrupt
	}
	return frameHeader + int(n), nil
}

// decodeFrame decodes the complete frame b (as long as frameLen said).
func decodeFrame(b []byte) (store.UsageRecord, error) {
	var rec store.UsageRecord
	if len(b) < frameHeader {
		return rec, errCorrupt
	}
	payload := b[frameHeader:]
	if int(binary.LittleEndian.Uint32(b)) != len(payload) ||
		binary.LittleEndian.Uint32(b[4:]) != crc32.Checksum(payload, castagnoli) {
		return rec, errCorrupt
	}
	d := decoder{b: payload}
	if d.byte() != recordVersion {
		return rec, errCorrupt
	}
	if t := d.varint(); d.err == nil {
		rec.Time = time.Unix(0, t).UTC()
	}
	for _, p := range [...]*string{&rec.KeyID, &rec.KeyName, &rec.ClientIP, &rec.Method, &rec.Route, &rec.Model,
		&rec.Error, &rec.ClientCert} {
		*p = d.string()
	}
	var status int64
	for _, p := range [...]*int64{&status, &rec.PromptTokens, &rec.CompletionTokens, &rec.LatencyMS,
		&rec.BytesIn, &rec.BytesOut, &rec.Requests} {
		*p = d.varint()
	}
	flags := d.byte()
	if d.err != nil || len(d.b) != 0 || status < 0 || status > 999 {
		return store.UsageRecord{}, errCorrupt
	}
	rec.Status = int(status)
	rec.Truncated, rec.ClientGone = flags&1 != 0, flags&2 != 0
	return rec, nil
}

// decoder reads a payload; the first problem sticks in err.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err = errCorrupt
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	if d.err != nil {
		return ""
	}
	n, k := binary.Uvarint(d.b)
	if k <= 0 || n > maxField || n > uint64(len(d.b)-k) {
		d.err = errCorrupt
		return ""
	}
	s := string(d.b[k : k+int(n)])
	d.b = d.b[k+int(n):]
	return s
}
