package archive

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// countingAt counts the bytes read through it.
type countingAt struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// TestZipInflatedOnce: a deflated member that the caller reads to the end
// is inflated once — its CRC and size are checked on the caller's read —
// and a CRC that lies is still reported.
func TestZipInflatedOnce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(r.IntN(16)) // compressible, but not trivially
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("archive/data.pkl")
	w.Write(data)
	zw.Close()
	file := buf.Bytes()
	for _, c := range []struct {
		name   string
		breakC bool
	}{{"good", false}, {"bad crc", true}} {
		t.Run(c.name, func(t *testing.T) {
			f := append([]byte(nil), file...)
			if c.breakC {
				// the central directory's CRC of the only member
				i := bytes.LastIndex(f, []byte("PK\x01\x02"))
				f[i+16] ^= 0xff
			}
			ra := &countingAt{r: bytes.NewReader(f)}
			fs, err := Walk(context.Background(), ra, int64(len(f)), Zip, Options{}, func(m Member) error {
				rc, err := m.Open()
				if err != nil {
					return err
				}
				defer rc.Close()
				_, err = io.Copy(io.Discard, rc)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if got, limit := ra.n.Load(), int64(len(f))*3/2; got > limit {
				t.Errorf("read %d bytes of a %d-byte zip: the member was inflated twice", got, len(f))
			}
			hasCRC := false
			for _, fd := range fs {
				hasCRC = hasCRC || fd.ID == "ARC-007"
			}
			if hasCRC != c.breakC {
				t.Errorf("ARC-007 reported %v, want %v: %+v", hasCRC, c.breakC, fs)
			}
		})
	}
}
