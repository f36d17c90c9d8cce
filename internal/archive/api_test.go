package archive

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"testing"
)

func TestDetect(t *testing.T) {
	zipData, _ := buildZip(torchMembers(), zipOpts{})
	prepended, _ := buildZip(torchMembers(), zipOpts{prepend: pickleBytes})
	tarData := tarCases()[0].data()
	for _, c := range []struct {
		name string
		data []byte
		head Kind // Detect on the head
		full Kind // DetectReader on the whole file
	}{
		{"zip", zipData, Zip, Zip},
		{"zip-prepended", prepended, Unknown, Zip},
		{"tar", tarData, Tar, Tar},
		{"7z", build7z([]sevenFile{{name: "a", data: []byte("a")}}), SevenZip, SevenZip},
		{"npy", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", make([]byte, 4)), Npy, Npy},
		{"gzip", []byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0}, Gzip, Gzip},
		{"zlib", []byte{0x78, 0x9c, 0x03, 0}, Zlib, Zlib},
		{"xz", append(append([]byte(nil), magicXz...), 0, 4), Xz, Xz},
		{"bzip2", []byte("BZh91AY&SY"), Bzip2, Bzip2},
		{"lzma", []byte{0x5d, 0, 0, 0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0}, Lzma, Lzma},
		{"zstd", append(append([]byte(nil), magicZstd...), 0), Zstd, Zstd},
		{"lz4", append(append([]byte(nil), magicLz4...), 0), Lz4, Lz4},
		{"pickle", pickleBytes, Unknown, Unknown},
		{"gguf", []byte("GGUF\x03\x00\x00\x00\x00\x00\x00\x00"), Unknown, Unknown},
		{"safetensors", append([]byte{7, 0, 0, 0, 0, 0, 0, 0}, `{"a":1}`...), Unknown, Unknown},
		{"text", []byte("hello world, this is not an archive\n"), Unknown, Unknown},
		{"empty", nil, Unknown, Unknown},
		{"zeros-512", make([]byte, 1024), Unknown, Unknown},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Detect(c.data[:min(len(c.data), HeadSize)]); got != c.head {
				t.Errorf("Detect = %q, want %q", got, c.head)
			}
			got, err := DetectReader(bytes.NewReader(c.data), int64(len(c.data)))
			if err != nil || got != c.full {
				t.Errorf("DetectReader = %q, %v; want %q", got, err, c.full)
			}
		})
	}
}

func TestMemberReaderBounded(t *testing.T) {
	data, _ := buildZip([]zm{{name: "big", data: bytes.Repeat([]byte("x"), 1000), deflate: true}}, zipOpts{})
	var readErr error
	var n int64
	_, err := Walk(context.Background(), bytes.NewReader(data), int64(len(data)), Zip, Options{MaxMemberSize: 100, NoVerify: true}, func(m Member) error {
		rc, err := m.Open()
		if err != nil {
			return err
		}
		defer rc.Close()
		n, readErr = io.Copy(io.Discard, rc)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(readErr, ErrMemberTooLarge) || n != 100 {
		t.Errorf("read %d bytes, err %v; want 100 and ErrMemberTooLarge", n, readErr)
	}
}

func TestWalkCancelled(t *testing.T) {
	data, _ := buildZip(torchMembers(), zipOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Walk(ctx, bytes.NewReader(data), int64(len(data)), Zip, Options{}, func(Member) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestWalkCallbackError(t *testing.T) {
	data, _ := buildZip(torchMembers(), zipOpts{})
	stop := errors.New("stop")
	calls := 0
	_, err := Walk(context.Background(), bytes.NewReader(data), int64(len(data)), Zip, Options{}, func(Member) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("err %v after %d calls; want the callback's error after 1", err, calls)
	}
}

func TestWalkUnknownKind(t *testing.T) {
	if _, err := Walk(context.Background(), bytes.NewReader(nil), 0, Kind("rar"), Options{}, nil); err == nil {
		t.Error("no error for an unknown kind")
	}
}

func TestSpool(t *testing.T) {
	data, _ := buildZip(torchMembers(), zipOpts{})
	dir := t.TempDir()
	var spooled []byte
	var tooBig error
	_, err := Walk(context.Background(), bytes.NewReader(data), int64(len(data)), Zip, Options{}, func(m Member) error {
		if m.Name == "archive/data.pkl" {
			f, n, err := Spool(context.Background(), m, dir, 1<<20)
			if err != nil {
				return err
			}
			defer os.Remove(f.Name())
			defer f.Close()
			spooled = make([]byte, n)
			if _, err := f.ReadAt(spooled, 0); err != nil {
				return err
			}
		}
		if m.Name == "archive/data/0" {
			_, _, tooBig = Spool(context.Background(), m, dir, 10)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(spooled, pickleBytes) {
		t.Errorf("spooled %x", spooled)
	}
	if !errors.Is(tooBig, ErrMemberTooLarge) {
		t.Errorf("spooling past the limit: %v", tooBig)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("temporary files left behind: %d", len(left))
	}
}

func TestParseNpyHeader(t *testing.T) {
	h, err := ParseNpyHeader(npyFile(1, "{'descr': '<i8', 'fortran_order': True, 'shape': (3, 4), }", make([]byte, 96)))
	if err != nil {
		t.Fatal(err)
	}
	if h.Descr != "'<i8'" || !h.FortranOrder || len(h.Shape) != 2 || h.Shape[1] != 4 || h.ItemSize != 8 || h.Object || h.DataOffset != 128 {
		t.Errorf("header %+v", h)
	}
}

// FuzzSevenZip fuzzes the packed data and header of a 7z archive and
// wraps them with valid CRCs, so inputs reach the header parsers instead
// of failing the checksum.
func FuzzSevenZip(f *testing.F) {
	for _, c := range sevenCases() {
		b := c.data()
		if len(b) < 32 {
			continue
		}
		off, size := binary.LittleEndian.Uint64(b[12:]), binary.LittleEndian.Uint64(b[20:])
		if 32+off+size != uint64(len(b)) {
			continue
		}
		f.Add(b[32:32+off], b[32+off:])
	}
	f.Fuzz(func(t *testing.T, packed, header []byte) { fuzzWalk(t, raw7z(packed, header), SevenZip) })
}
