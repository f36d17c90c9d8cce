package inspect

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// Builders for the test corpus: every file is written byte by byte here.

// ggufHeader is a minimal GGUF header: magic, version, no tensors, no KVs.
func ggufHeader(version uint32) []byte {
	b := []byte("GGUF")
	b = binary.LittleEndian.AppendUint32(b, version)
	b = binary.LittleEndian.AppendUint64(b, 0)
	b = binary.LittleEndian.AppendUint64(b, 0)
	return b
}

// pickleOSSystem is a protocol 0 pickle that calls os.system.
var pickleOSSystem = []byte("cos\nsystem\n(S'id'\ntR.")

// pickleBenign2 is a protocol 2 pickle of an empty dict.
var pickleBenign2 = []byte("\x80\x02}q\x00.")

// safetensorsFile is a valid one-tensor safetensors file.
func safetensorsFile() []byte {
	hdr := []byte(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`)
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	b = append(b, hdr...)
	return append(b, make([]byte, 8)...)
}

type zmember struct {
	name string
	data []byte
}

func zipFile(t testing.TB, comment string, ms ...zmember) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range ms {
		w, err := zw.Create(m.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(m.data)
	}
	if comment != "" {
		zw.SetComment(comment)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tarFile(t testing.TB, ms ...zmember) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Format: tar.FormatUSTAR}); err != nil {
			t.Fatal(err)
		}
		tw.Write(m.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	return buf.Bytes()
}

// randomBytes are deterministic pseudo-random bytes without any 0x80
// (so that no embedded pickle candidate appears by chance).
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(0x80))
	}
	return b
}

// npyFile is a tiny float32 .npy array.
func npyFile() []byte {
	hdr := "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
	for (10+len(hdr)+1)%64 != 0 {
		hdr += " "
	}
	hdr += "\n"
	b := []byte("\x93NUMPY\x01\x00")
	b = binary.LittleEndian.AppendUint16(b, uint16(len(hdr)))
	b = append(b, hdr...)
	return append(b, make([]byte, 8)...)
}

// nestedZip wraps inner in depth zips.
func nestedZip(t testing.TB, inner []byte, depth int) []byte {
	b := inner
	for range depth {
		b = zipFile(t, "", zmember{"inner.zip", b})
	}
	return b
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// tarV7 is a one-member tar in the old v7 layout: no "ustar" magic, only
// the header checksum says it is a tar (Python's tarfile reads it).
func tarV7(t testing.TB) []byte {
	t.Helper()
	data := pickleOSSystem
	h := make([]byte, 512)
	copy(h, "pickle")
	copy(h[100:], "0000644\x00")
	copy(h[108:], "0000000\x00")
	copy(h[116:], "0000000\x00")
	copy(h[124:], fmt.Sprintf("%011o\x00", len(data)))
	copy(h[136:], "00000000000\x00")
	h[156] = '0'
	copy(h[148:], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
	body := append(h, data...)
	body = append(body, make([]byte, 512-len(data)%512)...)
	return append(body, make([]byte, 1024)...)
}

// joblibZFile is joblib's pre-0.10 compressed layout around data.
func joblibZFile(data []byte) []byte {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(data)
	zw.Close()
	hdr := fmt.Sprintf("ZF%-19s", fmt.Sprintf("0x%x", len(data)))
	return append([]byte(hdr), z.Bytes()...)
}
