package archive

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"sort"
	"strings"
)

// Zip record sizes and signatures (APPNOTE.TXT).
const (
	eocdLen        = 22
	cdHeaderLen    = 46
	localHeaderLen = 30
	z64LocatorLen  = 20
	z64EOCDLen     = 56

	sigLocal     = 0x04034b50
	sigCentral   = 0x02014b50
	sigEOCD      = 0x06054b50
	sigZ64EOCD   = 0x06064b50
	sigZ64Loc    = 0x07064b50
	sigDataDesc  = 0x08074b50
	u32Sentinel  = 0xFFFFFFFF
	u16Sentinel  = 0xFFFF
	flagEncrypt  = 1 << 0
	flagDataDesc = 1 << 3
	flagStrong   = 1 << 6
	flagUTF8     = 1 << 11
	flagCDEncr   = 1 << 13
	// flags ordinary writers set: deflate options (1,2), descriptor, UTF-8.
	flagsOrdinary = 1<<1 | 1<<2 | flagDataDesc | flagUTF8
	flagsEncrypt  = flagEncrypt | flagStrong | flagCDEncr
)

// findEOCD returns the absolute offset of the last end-of-central-directory
// record in tail (which starts at absolute offset base) whose comment fits
// in the tail, or -1.
func findEOCD(tail []byte, base int64) int64 {
	for i := len(tail) - eocdLen; i >= 0; i-- {
		if binary.LittleEndian.Uint32(tail[i:]) != sigEOCD {
			continue
		}
		n := int(binary.LittleEndian.Uint16(tail[i+20:]))
		if i+eocdLen+n <= len(tail) {
			return base + int64(i)
		}
	}
	return -1
}

// zipEntry is one central directory entry plus what its local header says.
type zipEntry struct {
	name      string
	cdOff     int64
	madeBy    uint16
	flags     uint16
	method    uint16
	crc       uint32
	csize     uint64
	usize     uint64
	localOff  uint64
	extAttr   uint32
	loc       int64 // absolute local header offset
	dataOff   int64
	spanEnd   int64 // end of data (and data descriptor)
	located   bool
	openEnded bool // header found, data extent unknown
	actualCRC uint32
	verified  bool
}

// readFull reads n bytes at off, failing if the file is shorter.
func (w *walker) readFull(off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || off > w.size || int64(n) > w.size-off {
		return nil, io.ErrUnexpectedEOF
	}
	b := make([]byte, n)
	if _, err := w.r.ReadAt(b, off); err != nil && !(err == io.EOF) {
		return nil, fmt.Errorf("read archive at offset %d: %w", off, err)
	}
	return b, nil
}

func (w *walker) zip() error {
	tailLen := min(w.size, eocdLen+0xFFFF)
	tail, err := w.readFull(w.size-tailLen, int(tailLen))
	if err != nil {
		return err
	}
	eocd := findEOCD(tail, w.size-tailLen)
	if eocd < 0 {
		w.add("ARC-019", "", "no end-of-central-directory record: the zip is truncated or not a zip", -1)
		return nil
	}
	// Other plausible end records before the one we use.
	rel := int(eocd - (w.size - tailLen))
	for i := rel - 1; i >= 0; i-- {
		if i+eocdLen <= len(tail) && binary.LittleEndian.Uint32(tail[i:]) == sigEOCD && w.plausibleEOCD(tail[i:i+eocdLen], w.size-tailLen+int64(i)) {
			w.add("ARC-022", "", fmt.Sprintf("another end record at offset %d; this report follows the one at %d", w.size-tailLen+int64(i), eocd), w.size-tailLen+int64(i))
			break
		}
	}
	e := tail[rel : rel+eocdLen]
	le := binary.LittleEndian
	disk, cdDisk := le.Uint16(e[4:]), le.Uint16(e[6:])
	entriesDisk, entries := uint64(le.Uint16(e[8:])), uint64(le.Uint16(e[10:]))
	cdSize, cdOffset := uint64(le.Uint32(e[12:])), uint64(le.Uint32(e[16:]))
	commentLen := int64(le.Uint16(e[20:]))
	if end := eocd + eocdLen + commentLen; end < w.size {
		w.add("ARC-011", "", fmt.Sprintf("%d bytes after the end-of-central-directory record and its comment", w.size-end), end)
		w.hide("<appended>", end, w.size-end)
	}
	cdEnd := eocd // where the central directory must end

	// Zip64.
	needZ64 := entries == u16Sentinel || entriesDisk == u16Sentinel || cdSize == u32Sentinel || cdOffset == u32Sentinel
	locOff := eocd - z64LocatorLen
	hasLoc := false
	if locOff >= 0 {
		lb, err := w.readFull(locOff, z64LocatorLen)
		if err != nil {
			return err
		}
		hasLoc = le.Uint32(lb) == sigZ64Loc
		if hasLoc {
			recOff := int64(le.Uint64(lb[8:]))
			rec, rerr := w.readFull(recOff, z64EOCDLen)
			switch {
			case recOff < 0 || recOff > locOff-z64EOCDLen || rerr != nil:
				w.add("ARC-013", "", fmt.Sprintf("zip64 locator points to offset %d, outside the archive", recOff), locOff)
				hasLoc = false
			case le.Uint32(rec) != sigZ64EOCD:
				w.add("ARC-013", "", fmt.Sprintf("zip64 locator points to offset %d, where there is no zip64 end record", recOff), locOff)
				hasLoc = false
			default:
				recSize := le.Uint64(rec[4:])
				if recSize < z64EOCDLen-12 || int64(recSize) < 0 || recOff+12+int64(recSize) != locOff {
					w.add("ARC-013", "", fmt.Sprintf("zip64 end record at %d (size %d) does not end at its locator (%d); readers that look right before the locator find other bytes", recOff, recSize, locOff), recOff)
				}
				z64Entries, z64Size, z64Off := le.Uint64(rec[32:]), le.Uint64(rec[40:]), le.Uint64(rec[48:])
				if (entries != u16Sentinel && entries != z64Entries) || (cdSize != u32Sentinel && cdSize != z64Size) || (cdOffset != u32Sentinel && cdOffset != z64Off) {
					w.add("ARC-013", "", fmt.Sprintf("classic end record (entries %d, directory %d bytes at %d) and zip64 end record (entries %d, directory %d bytes at %d) disagree", entries, cdSize, cdOffset, z64Entries, z64Size, z64Off), recOff)
				}
				entries, cdSize, cdOffset = z64Entries, z64Size, z64Off
				disk, cdDisk = 0, 0
				if le.Uint32(rec[16:]) != 0 || le.Uint32(rec[20:]) != 0 {
					disk = 1
				}
				cdEnd = recOff
			}
		}
	}
	if needZ64 && !hasLoc {
		w.add("ARC-013", "", "end record uses zip64 placeholder values but there is no valid zip64 end record", eocd)
	}
	if disk != 0 || cdDisk != 0 {
		w.add("ARC-019", "", "multi-disk (split) archives are not supported", eocd)
		return nil
	}
	if cdSize > uint64(cdEnd) || cdOffset > uint64(cdEnd) {
		w.add("ARC-019", "", fmt.Sprintf("central directory (%d bytes at %d) does not fit before its end record at %d", cdSize, cdOffset, cdEnd), eocd)
		return nil
	}
	cdStart := cdEnd - int64(cdSize)
	// base: bytes prepended to an archive whose offsets do not count them
	// (Python's zipfile and Go's archive/zip both shift by it).
	base := cdStart - int64(cdOffset)
	if base < 0 {
		w.add("ARC-019", "", fmt.Sprintf("central directory offset %d lies beyond where the directory can start (%d)", cdOffset, cdStart), eocd)
		return nil
	}

	ents, err := w.zipCentral(cdStart, int64(cdSize))
	if err != nil {
		return err
	}
	if uint64(len(ents)) != entries && len(ents) < w.opts.MaxMembers {
		w.add("ARC-020", "", fmt.Sprintf("end record claims %d entries, central directory holds %d", entries, len(ents)), eocd)
	}
	for _, z := range ents {
		if err := w.zipLocal(z, base, cdStart); err != nil {
			return err
		}
	}
	w.zipLayout(ents, cdStart)
	// CRCs and real sizes are checked while the caller reads each member
	// (one inflate instead of two); members the caller did not read to the
	// end are verified on their own afterwards. Without a caller, or when
	// duplicate names must be compared by content first, every member is
	// verified up front.
	verifyFirst := w.fn == nil || hasDuplicateNames(ents)
	if !w.opts.NoVerify && verifyFirst {
		for _, z := range ents {
			if err := w.zipVerify(z); err != nil {
				return err
			}
		}
	}
	if verifyFirst {
		w.zipDuplicates(ents)
	}
	for _, z := range ents {
		if !z.located || (strings.HasSuffix(z.name, "/") && z.usize == 0) {
			if !w.opts.NoVerify && !verifyFirst {
				if err := w.zipVerify(z); err != nil {
					return err
				}
			}
			continue // unreadable, or a directory entry
		}
		m := w.zipMember(z)
		if !w.opts.NoVerify && !verifyFirst && z.method == 8 && z.flags&flagsEncrypt == 0 && !w.declaredBomb(z) {
			open := m.Open
			m.Open = func() (io.ReadCloser, error) {
				rc, err := open()
				if err != nil {
					return nil, err
				}
				return &crcReader{ReadCloser: rc, h: crc32.NewIEEE(), z: z}, nil
			}
		}
		if err := w.call(m); err != nil {
			return err
		}
		if !w.opts.NoVerify && !verifyFirst {
			if z.verified {
				w.budget -= int64(z.usize)
				w.checkCRC(z, int64(z.usize))
			} else if err := w.zipVerify(z); err != nil {
				return err
			}
		}
	}
	if !verifyFirst {
		w.zipDuplicates(ents)
	}
	return w.callHidden()
}

// hasDuplicateNames: names repeat (compared as Python's zipfile does).
func hasDuplicateNames(ents []*zipEntry) bool {
	seen := map[string]bool{}
	for _, z := range ents {
		key := z.name
		if i := strings.IndexByte(key, 0); i >= 0 {
			key = key[:i]
		}
		if seen[key] {
			return true
		}
		seen[key] = true
	}
	return false
}

// crcReader checks a member's CRC and size as the caller reads it: when
// the caller reaches the end and the byte count is the declared size, the
// member counts as verified with the CRC it really has.
type crcReader struct {
	io.ReadCloser
	h hash.Hash32
	n int64
	z *zipEntry
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if err == io.EOF && uint64(c.n) == c.z.usize {
		c.z.actualCRC, c.z.verified = c.h.Sum32(), true
	}
	return n, err
}

// declaredBomb: the declared sizes alone make the member a bomb; it is
// verified (and reported) on its own, under the budget.
func (w *walker) declaredBomb(z *zipEntry) bool {
	return z.usize >= 1<<20 && z.usize/max(z.csize, 1) > uint64(w.opts.MaxRatio) || z.usize > uint64(min(w.opts.MaxMemberSize, w.budget))
}

// checkCRC reports a verified member whose content CRC differs from the
// declared one, or that inflates far beyond its compressed size.
func (w *walker) checkCRC(z *zipEntry, n int64) {
	if z.actualCRC != z.crc {
		w.add("ARC-007", z.name, fmt.Sprintf("content CRC %08x, declared %08x", z.actualCRC, z.crc), z.dataOff)
	}
	if z.method == 8 && n >= 1<<20 && n/max(int64(z.csize), 1) > w.opts.MaxRatio {
		w.add("ARC-016", z.name, fmt.Sprintf("%d bytes from %d compressed (ratio %d)", n, z.csize, n/max(int64(z.csize), 1)), z.dataOff)
	}
}

// plausibleEOCD says whether an end record at off points at a central
// directory that begins with a central header (or is empty).
func (w *walker) plausibleEOCD(e []byte, off int64) bool {
	le := binary.LittleEndian
	cdSize, cdOffset := int64(le.Uint32(e[12:])), int64(le.Uint32(e[16:]))
	if le.Uint16(e[10:]) == 0 && cdSize == 0 {
		return true
	}
	start := off - cdSize
	if start < 0 || cdOffset > start {
		return false
	}
	b, err := w.readFull(start, 4)
	return err == nil && le.Uint32(b) == sigCentral
}

// zipCentral streams the central directory and returns its entries.
func (w *walker) zipCentral(start, n int64) ([]*zipEntry, error) {
	br := bufio.NewReader(io.NewSectionReader(w.r, start, n))
	le := binary.LittleEndian
	var ents []*zipEntry
	off := start
	var h [cdHeaderLen]byte
	for off < start+n {
		if err := w.ctx.Err(); err != nil {
			return nil, err
		}
		if len(ents) >= w.opts.MaxMembers {
			w.add("ARC-015", "", fmt.Sprintf("stopped after %d members", len(ents)), off)
			break
		}
		if _, err := io.ReadFull(br, h[:]); err != nil {
			w.add("ARC-019", "", fmt.Sprintf("central directory entry at %d is truncated", off), off)
			break
		}
		if le.Uint32(h[:]) != sigCentral {
			w.add("ARC-019", "", fmt.Sprintf("bad central directory signature at %d", off), off)
			break
		}
		nameLen, extraLen, commentLen := int(le.Uint16(h[28:])), int(le.Uint16(h[30:])), int(le.Uint16(h[32:]))
		varLen := nameLen + extraLen + commentLen
		if int64(varLen) > start+n-off-cdHeaderLen {
			w.add("ARC-019", "", fmt.Sprintf("central directory entry at %d runs past the directory", off), off)
			break
		}
		vb := make([]byte, varLen) // at most 3*64 KiB, and present in the file
		if _, err := io.ReadFull(br, vb); err != nil {
			w.add("ARC-019", "", fmt.Sprintf("central directory entry at %d is truncated", off), off)
			break
		}
		z := &zipEntry{
			name:     string(vb[:nameLen]),
			cdOff:    off,
			madeBy:   le.Uint16(h[4:]),
			flags:    le.Uint16(h[8:]),
			method:   le.Uint16(h[10:]),
			crc:      le.Uint32(h[16:]),
			csize:    uint64(le.Uint32(h[20:])),
			usize:    uint64(le.Uint32(h[24:])),
			extAttr:  le.Uint32(h[38:]),
			localOff: uint64(le.Uint32(h[42:])),
		}
		if !w.zip64Extra(z, vb[nameLen:nameLen+extraLen], le.Uint16(h[34:]) == u16Sentinel) {
			w.add("ARC-013", z.name, "sizes or offset use zip64 placeholders but the zip64 extra field is missing or short", off)
		}
		ents = append(ents, z)
		off += cdHeaderLen + int64(varLen)
	}
	return ents, nil
}

// zip64Extra replaces placeholder fields from the zip64 extra field; it
// reports false if a placeholder has no value.
func (w *walker) zip64Extra(z *zipEntry, extra []byte, diskSentinel bool) bool {
	le := binary.LittleEndian
	for len(extra) >= 4 {
		id, n := le.Uint16(extra), int(le.Uint16(extra[2:]))
		if n > len(extra)-4 {
			break
		}
		if id == 0x0001 {
			d := extra[4 : 4+n]
			for _, f := range []*uint64{&z.usize, &z.csize, &z.localOff} {
				if *f != u32Sentinel {
					continue
				}
				if len(d) < 8 {
					return false
				}
				*f = le.Uint64(d)
				d = d[8:]
			}
			return true
		}
		extra = extra[4+n:]
	}
	return z.usize != u32Sentinel && z.csize != u32Sentinel && z.localOff != u32Sentinel
}

// zipLocal reads and cross-checks a member's local header.
func (w *walker) zipLocal(z *zipEntry, base, cdStart int64) error {
	w.checkName(z.name, z.cdOff)
	if z.flags&flagsEncrypt != 0 {
		w.add("ARC-005", z.name, fmt.Sprintf("general-purpose flags 0x%04x", z.flags), z.cdOff)
	}
	if odd := z.flags &^ (flagsOrdinary | flagsEncrypt); odd != 0 {
		w.add("ARC-006", z.name, fmt.Sprintf("flag bits 0x%04x set", odd), z.cdOff)
	}
	if z.madeBy>>8 == 3 { // unix
		switch mode := z.extAttr >> 16 & 0xF000; mode {
		case 0xA000:
			w.add("ARC-023", z.name, "symbolic link", z.cdOff)
		case 0x2000, 0x6000, 0x1000, 0xC000:
			w.add("ARC-023", z.name, fmt.Sprintf("special file (mode 0%o)", mode), z.cdOff)
		}
	}
	if z.localOff > uint64(cdStart) || int64(z.localOff) > cdStart-base {
		w.add("ARC-009", z.name, fmt.Sprintf("local header offset %d is beyond the start of the central directory", z.localOff), z.cdOff)
		return nil
	}
	loc := base + int64(z.localOff)
	le := binary.LittleEndian
	h, err := w.readFull(loc, localHeaderLen)
	if err != nil || le.Uint32(h) != sigLocal {
		// Some tools write absolute offsets despite prepended data.
		if base > 0 {
			if h2, err2 := w.readFull(int64(z.localOff), localHeaderLen); err2 == nil && le.Uint32(h2) == sigLocal {
				loc, h, err = int64(z.localOff), h2, nil
			}
		}
		if err != nil || le.Uint32(h) != sigLocal {
			w.add("ARC-019", z.name, fmt.Sprintf("no local file header at offset %d", loc), loc)
			return nil
		}
	}
	flags, method := le.Uint16(h[6:]), le.Uint16(h[8:])
	crc, csize, usize := le.Uint32(h[14:]), uint64(le.Uint32(h[18:])), uint64(le.Uint32(h[22:]))
	nameLen, extraLen := int64(le.Uint16(h[26:])), int64(le.Uint16(h[28:]))
	if loc+localHeaderLen+nameLen+extraLen > cdStart {
		w.add("ARC-009", z.name, "local header runs into the central directory", loc)
		return nil
	}
	vb, err := w.readFull(loc+localHeaderLen, int(nameLen+extraLen))
	if err != nil {
		return err
	}
	if lname := string(vb[:nameLen]); lname != z.name {
		w.add("ARC-003", z.name, fmt.Sprintf("local header says %q", lname), loc)
	}
	if method != z.method {
		w.add("ARC-004", z.name, fmt.Sprintf("compression method: local %d, central %d", method, z.method), loc)
	}
	if flags != z.flags {
		w.add("ARC-004", z.name, fmt.Sprintf("flags: local 0x%04x, central 0x%04x", flags, z.flags), loc)
		if flags&flagsEncrypt != 0 && z.flags&flagsEncrypt == 0 {
			w.add("ARC-005", z.name, fmt.Sprintf("local header flags 0x%04x", flags), loc)
		}
	}
	z64 := false
	if csize == u32Sentinel || usize == u32Sentinel {
		lz := &zipEntry{usize: usize, csize: csize}
		if !w.zip64Extra(lz, vb[nameLen:], false) {
			w.add("ARC-013", z.name, "local header uses zip64 placeholders without a zip64 extra field", loc)
		}
		csize, usize, z64 = lz.csize, lz.usize, true
	}
	descriptor := flags&flagDataDesc != 0
	if !descriptor || crc != 0 || csize != 0 || usize != 0 {
		if crc != z.crc || csize != z.csize || usize != z.usize {
			w.add("ARC-004", z.name, fmt.Sprintf("local CRC/sizes %08x/%d/%d, central %08x/%d/%d", crc, csize, usize, z.crc, z.csize, z.usize), loc)
		}
	}
	z.loc = loc
	z.dataOff = loc + localHeaderLen + nameLen + extraLen
	if z.csize > uint64(cdStart-z.dataOff) {
		w.add("ARC-009", z.name, fmt.Sprintf("%d bytes of data at %d run past the members area (ends at %d)", z.csize, z.dataOff, cdStart), z.dataOff)
		// Keep the header in the layout; its end is unknown.
		z.spanEnd, z.openEnded = z.dataOff, true
		return nil
	}
	z.spanEnd = z.dataOff + int64(z.csize)
	z.located = true
	if descriptor {
		w.zipDescriptor(z, z64, cdStart)
	}
	return nil
}

// zipDescriptor parses the data descriptor after a member's data.
func (w *walker) zipDescriptor(z *zipEntry, z64 bool, cdStart int64) {
	le := binary.LittleEndian
	off := z.spanEnd
	n := int64(12)
	if z64 || z.csize >= u32Sentinel || z.usize >= u32Sentinel {
		n = 20
	}
	b, err := w.readFull(off, int(min(n+4, max(cdStart-off, 0))))
	if err != nil || int64(len(b)) < n {
		w.add("ARC-004", z.name, "data descriptor flag set but no room for a descriptor before the central directory", off)
		return
	}
	if le.Uint32(b) == sigDataDesc && int64(len(b)) >= n+4 {
		b = b[4:]
		off += 4
	}
	crc := le.Uint32(b)
	var cs, us uint64
	if n == 20 {
		cs, us = le.Uint64(b[4:]), le.Uint64(b[12:])
	} else {
		cs, us = uint64(le.Uint32(b[4:])), uint64(le.Uint32(b[8:]))
	}
	if crc != z.crc || cs != z.csize || us != z.usize {
		w.add("ARC-004", z.name, fmt.Sprintf("data descriptor CRC/sizes %08x/%d/%d, central %08x/%d/%d", crc, cs, us, z.crc, z.csize, z.usize), z.spanEnd)
	}
	z.spanEnd = off + n
}

// zipLayout reports overlaps, gaps and prepended bytes.
func (w *walker) zipLayout(ents []*zipEntry, cdStart int64) {
	var spans []*zipEntry
	for _, z := range ents {
		if z.located || z.openEnded {
			spans = append(spans, z)
		}
	}
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].loc < spans[j].loc })
	first := cdStart
	if len(spans) > 0 {
		first = spans[0].loc
	}
	if first > 0 {
		w.add("ARC-010", "", fmt.Sprintf("%d bytes before the first member%s", first, w.hiddenHint(0, first)), 0)
		w.hide("<prepended>", 0, first)
	}
	var prev *zipEntry
	end := first
	for _, z := range spans {
		if prev != nil && z.loc < end {
			w.add("ARC-008", z.name, fmt.Sprintf("starts at %d, inside %q (which ends at %d)", z.loc, prev.name, end), z.loc)
		} else if z.loc > end && (prev == nil || !prev.openEnded) {
			w.add("ARC-012", "", fmt.Sprintf("%d bytes at offset %d%s", z.loc-end, end, w.hiddenHint(end, z.loc)), end)
			w.hide(fmt.Sprintf("<gap@%d>", end), end, z.loc-end)
		}
		if z.spanEnd > end {
			end, prev = z.spanEnd, z
		}
	}
	if end < cdStart && len(spans) > 0 && !prev.openEnded {
		w.add("ARC-012", "", fmt.Sprintf("%d bytes at offset %d, before the central directory%s", cdStart-end, end, w.hiddenHint(end, cdStart)), end)
		w.hide(fmt.Sprintf("<gap@%d>", end), end, cdStart-end)
	}
}

// hiddenHint mentions a local header signature hidden in [from,to).
func (w *walker) hiddenHint(from, to int64) string {
	const maxScan = 1 << 20
	n := min(to-from, maxScan)
	b, err := w.readFull(from, int(n))
	if err != nil {
		return ""
	}
	if i := bytes.Index(b, magicZipLocal); i >= 0 {
		return fmt.Sprintf(" (contains a local file header at offset %d not listed in the central directory)", from+int64(i))
	}
	return ""
}

// zipVerify inflates a member under the budgets and checks size and CRC.
func (w *walker) zipVerify(z *zipEntry) error {
	if !z.located || z.flags&flagsEncrypt != 0 {
		return nil
	}
	if z.method != 0 && z.method != 8 {
		w.add("ARC-018", z.name, fmt.Sprintf("compression method %d", z.method), z.loc)
		return nil
	}
	if z.method == 8 && z.usize >= 1<<20 && z.usize/max(z.csize, 1) > uint64(w.opts.MaxRatio) {
		w.add("ARC-016", z.name, fmt.Sprintf("declares %d bytes from %d compressed (ratio %d)", z.usize, z.csize, z.usize/max(z.csize, 1)), z.dataOff)
		return nil
	}
	limit := min(w.opts.MaxMemberSize, w.budget)
	if z.usize > uint64(limit) {
		if w.budget < w.opts.MaxMemberSize {
			w.noteBudget(z.name)
		} else {
			w.add("ARC-021", z.name, fmt.Sprintf("%d bytes declared, limit %d", z.usize, w.opts.MaxMemberSize), z.dataOff)
		}
		return nil
	}
	// Read one byte past the declared size to catch members that lie.
	limit = min(limit, int64(z.usize)+1)
	var src io.Reader = io.NewSectionReader(w.r, z.dataOff, int64(z.csize))
	if z.method == 8 {
		fr := flate.NewReader(src)
		defer fr.Close()
		src = fr
	}
	h := crc32.NewIEEE()
	n, err := io.Copy(h, &limitedReader{ctx: w.ctx, r: src, limit: limit})
	w.budget -= n
	switch {
	case w.ctx.Err() != nil:
		return w.ctx.Err()
	case errors.Is(err, ErrMemberTooLarge) || uint64(n) > z.usize:
		w.add("ARC-017", z.name, fmt.Sprintf("inflates to more than the declared %d bytes", z.usize), z.dataOff)
		return nil
	case err != nil:
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			return fmt.Errorf("read archive member %q: %w", z.name, err)
		}
		w.add("ARC-019", z.name, fmt.Sprintf("compressed data is corrupt: %v", err), z.dataOff)
		return nil
	case uint64(n) < z.usize:
		w.add("ARC-017", z.name, fmt.Sprintf("inflates to %d bytes, declared %d", n, z.usize), z.dataOff)
		return nil
	}
	z.actualCRC, z.verified = h.Sum32(), true
	w.checkCRC(z, n)
	return nil
}

func (w *walker) noteBudget(member string) {
	if !w.budgetHit {
		w.budgetHit = true
		w.add("ARC-021", member, fmt.Sprintf("total decompression limit of %d bytes reached; remaining members not verified", w.opts.MaxTotal), -1)
	}
}

// zipDuplicates reports repeated names. Names are compared the way Python's
// zipfile sees them: cut at the first NUL byte.
func (w *walker) zipDuplicates(ents []*zipEntry) {
	byName := map[string]*zipEntry{}
	for _, z := range ents {
		key := z.name
		if i := strings.IndexByte(key, 0); i >= 0 {
			key = key[:i]
		}
		p, ok := byName[key]
		if !ok {
			byName[key] = z
			continue
		}
		pc, zc := p.crc, z.crc
		if p.verified {
			pc = p.actualCRC
		}
		if z.verified {
			zc = z.actualCRC
		}
		if pc != zc || p.usize != z.usize {
			w.add("ARC-001", key, fmt.Sprintf("entries at central offsets %d and %d differ (CRC %08x vs %08x, %d vs %d bytes)", p.cdOff, z.cdOff, pc, zc, p.usize, z.usize), z.cdOff)
		} else {
			w.add("ARC-002", key, fmt.Sprintf("entries at central offsets %d and %d", p.cdOff, z.cdOff), z.cdOff)
		}
	}
}

// zipMember builds the Member handed to the callback.
func (w *walker) zipMember(z *zipEntry) Member {
	m := Member{Name: z.name, Size: int64(z.usize), Offset: z.dataOff}
	if int64(z.usize) < 0 {
		m.Size = -1
	}
	sec := io.NewSectionReader(w.r, z.dataOff, int64(z.csize))
	method := z.method
	if method == 0 {
		m.Raw = sec
	}
	m.Open = func() (io.ReadCloser, error) {
		s := io.NewSectionReader(w.r, z.dataOff, int64(z.csize))
		switch method {
		case 0:
			return w.bounded(s, nil), nil
		case 8:
			fr := flate.NewReader(s)
			return w.bounded(fr, fr), nil
		}
		return nil, fmt.Errorf("%w (method %d)", ErrUnsupported, method)
	}
	return m
}
