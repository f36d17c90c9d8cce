package archive

// Test corpus builders: every container in the tests is written here byte by
// byte (or with a standard writer for benign look-alikes), never downloaded.

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"unicode/utf16"

	"github.com/ulikunitz/xz/lzma"
)

// zm is one zip member to write.
type zm struct {
	name     string
	data     []byte
	deflate  bool
	method   *uint16 // override the method number (data written stored)
	flags    uint16
	desc     bool   // write a data descriptor (flag bit 3, zero local fields)
	rawLocal []byte // replace the whole local record (header+data) with these bytes
}

// zlayout records where the builder put things, for byte patches.
type zlayout struct {
	local, data, central []int
	cdStart, eocd        int
}

type zipOpts struct {
	prepend      []byte
	absolute     bool // with prepend: write offsets counting the prepended bytes
	gapAfter     map[int][]byte
	appended     []byte
	extraCentral func(l *zlayout) [][]byte // extra central entries appended
	zip64        bool                      // write zip64 end records (classic fields as placeholders)
}

func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func put16(b []byte, off int, v uint16) { binary.LittleEndian.PutUint16(b[off:], v) }
func put32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }

func deflateBytes(p []byte) []byte {
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	fw.Write(p)
	fw.Close()
	return buf.Bytes()
}

// member encoding facts
type zenc struct {
	method      uint16
	flags       uint16
	crc         uint32
	csize, size uint32
	payload     []byte
}

func encode(m zm) zenc {
	e := zenc{flags: m.flags, crc: crc32.ChecksumIEEE(m.data), size: uint32(len(m.data)), payload: m.data}
	if m.deflate {
		e.method = 8
		e.payload = deflateBytes(m.data)
	}
	if m.method != nil {
		e.method = *m.method
	}
	if m.desc {
		e.flags |= flagDataDesc
	}
	e.csize = uint32(len(e.payload))
	return e
}

func localRecord(name string, e zenc, desc bool) []byte {
	var b bytes.Buffer
	b.Write(le32(sigLocal))
	b.Write(le16(20))
	b.Write(le16(e.flags))
	b.Write(le16(e.method))
	b.Write(le32(0)) // time+date
	if desc {
		b.Write(make([]byte, 12))
	} else {
		b.Write(le32(e.crc))
		b.Write(le32(e.csize))
		b.Write(le32(e.size))
	}
	b.Write(le16(uint16(len(name))))
	b.Write(le16(0))
	b.WriteString(name)
	b.Write(e.payload)
	if desc {
		b.Write(le32(sigDataDesc))
		b.Write(le32(e.crc))
		b.Write(le32(e.csize))
		b.Write(le32(e.size))
	}
	return b.Bytes()
}

func centralRecord(name string, e zenc, localOff uint32, madeBy uint16, ext uint32) []byte {
	var b bytes.Buffer
	b.Write(le32(sigCentral))
	b.Write(le16(madeBy))
	b.Write(le16(20))
	b.Write(le16(e.flags))
	b.Write(le16(e.method))
	b.Write(le32(0))
	b.Write(le32(e.crc))
	b.Write(le32(e.csize))
	b.Write(le32(e.size))
	b.Write(le16(uint16(len(name))))
	b.Write(le16(0)) // extra
	b.Write(le16(0)) // comment
	b.Write(le16(0)) // disk
	b.Write(le16(0)) // internal attrs
	b.Write(le32(ext))
	b.Write(le32(localOff))
	b.WriteString(name)
	return b.Bytes()
}

// buildZip writes members and a central directory the way Python's zipfile
// does (no descriptors unless asked).
func buildZip(ms []zm, o zipOpts) ([]byte, zlayout) {
	var b bytes.Buffer
	var l zlayout
	b.Write(o.prepend)
	shift := 0
	if !o.absolute {
		shift = len(o.prepend)
	}
	var encs []zenc
	for i, m := range ms {
		e := encode(m)
		encs = append(encs, e)
		l.local = append(l.local, b.Len())
		l.data = append(l.data, b.Len()+localHeaderLen+len(m.name))
		if m.rawLocal != nil {
			b.Write(m.rawLocal)
		} else {
			b.Write(localRecord(m.name, e, m.desc))
		}
		b.Write(o.gapAfter[i])
	}
	l.cdStart = b.Len()
	for i, m := range ms {
		l.central = append(l.central, b.Len())
		b.Write(centralRecord(m.name, encs[i], uint32(l.local[i]-shift), 20, 0))
	}
	n := len(ms)
	if o.extraCentral != nil {
		for _, c := range o.extraCentral(&l) {
			l.central = append(l.central, b.Len())
			b.Write(c)
			n++
		}
	}
	cdSize := b.Len() - l.cdStart
	cdOff := l.cdStart - shift
	if o.zip64 {
		recOff := b.Len()
		b.Write(le32(sigZ64EOCD))
		b.Write(binary.LittleEndian.AppendUint64(nil, z64EOCDLen-12))
		b.Write(le16(45))
		b.Write(le16(45))
		b.Write(le32(0))
		b.Write(le32(0))
		b.Write(binary.LittleEndian.AppendUint64(nil, uint64(n)))
		b.Write(binary.LittleEndian.AppendUint64(nil, uint64(n)))
		b.Write(binary.LittleEndian.AppendUint64(nil, uint64(cdSize)))
		b.Write(binary.LittleEndian.AppendUint64(nil, uint64(cdOff)))
		b.Write(le32(sigZ64Loc))
		b.Write(le32(0))
		b.Write(binary.LittleEndian.AppendUint64(nil, uint64(recOff)))
		b.Write(le32(1))
	}
	l.eocd = b.Len()
	b.Write(le32(sigEOCD))
	b.Write(le16(0))
	b.Write(le16(0))
	if o.zip64 {
		b.Write(le16(0xFFFF))
		b.Write(le16(0xFFFF))
		b.Write(le32(0xFFFFFFFF))
		b.Write(le32(0xFFFFFFFF))
	} else {
		b.Write(le16(uint16(n)))
		b.Write(le16(uint16(n)))
		b.Write(le32(uint32(cdSize)))
		b.Write(le32(uint32(cdOff)))
	}
	b.Write(le16(0))
	b.Write(o.appended)
	return b.Bytes(), l
}

// pickleBytes is a tiny benign protocol-4 pickle of the dict {} (no imports).
var pickleBytes = []byte{0x80, 0x04, 0x95, 0x03, 0, 0, 0, 0, 0, 0, 0, '}', 0x94, '.'}

// torchMembers is the layout of an ordinary torch.save zip checkpoint.
func torchMembers() []zm {
	return []zm{
		{name: "archive/data.pkl", data: pickleBytes},
		{name: "archive/data/0", data: bytes.Repeat([]byte{0, 0, 0x80, 0x3f}, 16)},
		{name: "archive/version", data: []byte("3\n")},
	}
}

// ---- 7z ----

func sevenNumber(v uint64) []byte {
	for i := 0; i < 8; i++ {
		if v < 1<<(7*(i+1)) {
			first := byte(0xFF<<(8-i)) | byte(v>>(8*i))
			out := []byte{first}
			for j := 0; j < i; j++ {
				out = append(out, byte(v>>(8*j)))
			}
			return out
		}
	}
	return append([]byte{0xFF}, binary.LittleEndian.AppendUint64(nil, v)...)
}

type sevenFile struct {
	name string
	data []byte
	crc  *uint32 // override
}

// build7z writes a 7z archive with one "copy" folder per file.
func build7z(files []sevenFile) []byte {
	var packed bytes.Buffer
	for _, f := range files {
		packed.Write(f.data)
	}
	var h bytes.Buffer
	n := uint64(len(files))
	h.WriteByte(0x01)       // Header
	h.WriteByte(0x04)       // MainStreamsInfo
	h.WriteByte(0x06)       // PackInfo
	h.Write(sevenNumber(0)) // PackPos
	h.Write(sevenNumber(n)) // NumPackStreams
	h.WriteByte(0x09)       // Size
	for _, f := range files {
		h.Write(sevenNumber(uint64(len(f.data))))
	}
	h.WriteByte(0x00)
	h.WriteByte(0x07) // UnpackInfo
	h.WriteByte(0x0B) // Folder
	h.Write(sevenNumber(n))
	h.WriteByte(0) // not external
	for range files {
		h.Write(sevenNumber(1)) // one coder
		h.WriteByte(0x01)       // id size 1, simple
		h.WriteByte(0x00)       // copy
	}
	h.WriteByte(0x0C) // CodersUnpackSize
	for _, f := range files {
		h.Write(sevenNumber(uint64(len(f.data))))
	}
	h.WriteByte(0x0A) // CRC
	h.WriteByte(1)    // all defined
	for _, f := range files {
		c := crc32.ChecksumIEEE(f.data)
		if f.crc != nil {
			c = *f.crc
		}
		h.Write(le32(c))
	}
	h.WriteByte(0x00) // end UnpackInfo
	h.WriteByte(0x08) // SubStreamsInfo: one stream per folder
	h.WriteByte(0x00)
	h.WriteByte(0x00) // end MainStreamsInfo
	h.WriteByte(0x05) // FilesInfo
	h.Write(sevenNumber(n))
	var names bytes.Buffer
	names.WriteByte(0) // not external
	for _, f := range files {
		for _, u := range utf16.Encode([]rune(f.name)) {
			names.Write(le16(u))
		}
		names.Write(le16(0))
	}
	h.WriteByte(0x11)
	h.Write(sevenNumber(uint64(names.Len())))
	h.Write(names.Bytes())
	h.WriteByte(0x00) // end FilesInfo
	h.WriteByte(0x00) // end Header

	var start bytes.Buffer
	start.Write(binary.LittleEndian.AppendUint64(nil, uint64(packed.Len())))
	start.Write(binary.LittleEndian.AppendUint64(nil, uint64(h.Len())))
	start.Write(le32(crc32.ChecksumIEEE(h.Bytes())))
	var out bytes.Buffer
	out.Write(magic7z)
	out.Write([]byte{0, 4})
	out.Write(le32(crc32.ChecksumIEEE(start.Bytes())))
	out.Write(start.Bytes())
	out.Write(packed.Bytes())
	out.Write(h.Bytes())
	return out.Bytes()
}

// ---- npy ----

func npyFile(major byte, header string, data []byte) []byte {
	pre := 10
	if major > 1 {
		pre = 12
	}
	h := header
	total := pre + len(h) + 1
	if pad := (64 - total%64) % 64; pad > 0 {
		h += string(bytes.Repeat([]byte{' '}, pad))
	}
	h += "\n"
	var b bytes.Buffer
	b.Write(magicNpy)
	b.Write([]byte{major, 0})
	if major == 1 {
		b.Write(le16(uint16(len(h))))
	} else {
		b.Write(le32(uint32(len(h))))
	}
	b.WriteString(h)
	b.Write(data)
	return b.Bytes()
}

// raw7z wraps a header (and packed data) in a 7z signature header.
func raw7z(packed, header []byte) []byte {
	var start bytes.Buffer
	start.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(packed))))
	start.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(header))))
	start.Write(le32(crc32.ChecksumIEEE(header)))
	var out bytes.Buffer
	out.Write(magic7z)
	out.Write([]byte{0, 4})
	out.Write(le32(crc32.ChecksumIEEE(start.Bytes())))
	out.Write(start.Bytes())
	out.Write(packed)
	out.Write(header)
	return out.Bytes()
}

// encoded7z re-packs a copy-method archive so its header is LZMA-encoded,
// the way 7-Zip writes archives by default.
func encoded7z(files []sevenFile) []byte {
	plain := build7z(files)
	hsize := binary.LittleEndian.Uint64(plain[20:])
	packed := plain[32 : len(plain)-int(hsize)]
	header := plain[len(plain)-int(hsize):]
	var lz bytes.Buffer
	w, err := lzma.WriterConfig{SizeInHeader: true, Size: int64(len(header))}.NewWriter(&lz)
	if err != nil {
		panic(err)
	}
	w.Write(header)
	w.Close()
	stream := lz.Bytes()
	props, body := stream[:5], stream[13:]
	var h bytes.Buffer
	h.WriteByte(0x17)
	h.WriteByte(0x06)
	h.Write(sevenNumber(uint64(len(packed))))
	h.Write(sevenNumber(1))
	h.WriteByte(0x09)
	h.Write(sevenNumber(uint64(len(body))))
	h.WriteByte(0x00)
	h.WriteByte(0x07)
	h.WriteByte(0x0B)
	h.Write(sevenNumber(1))
	h.WriteByte(0)
	h.Write(sevenNumber(1))
	h.WriteByte(0x23)
	h.Write([]byte{3, 1, 1})
	h.Write(sevenNumber(5))
	h.Write(props)
	h.WriteByte(0x0C)
	h.Write(sevenNumber(uint64(len(header))))
	h.WriteByte(0x00)
	h.WriteByte(0x00)
	return raw7z(append(append([]byte(nil), packed...), body...), h.Bytes())
}
