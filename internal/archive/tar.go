package archive

import (
	"archive/tar"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

// countingReader counts bytes consumed from r.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}

type tarSeen struct {
	off  int64
	size int64
	crc  uint32
	ok   bool
}

func (w *walker) tar() error {
	cr := &countingReader{r: io.NewSectionReader(w.r, 0, w.size)}
	tr := tar.NewReader(cr)
	seen := map[string]tarSeen{}
	count := 0
	for {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		hdrOff := cr.n
		hdr, err := tr.Next()
		if err == io.EOF {
			w.tarTail(cr.n)
			return w.callHidden()
		}
		if err != nil {
			w.add("ARC-019", "", fmt.Sprintf("tar header near offset %d: %v", hdrOff, err), hdrOff)
			return nil
		}
		if count >= w.opts.MaxMembers {
			w.add("ARC-015", "", fmt.Sprintf("stopped after %d members", count), hdrOff)
			return nil
		}
		count++
		dataOff := cr.n
		w.checkName(hdr.Name, hdrOff)
		switch hdr.Typeflag {
		case tar.TypeSymlink, tar.TypeLink:
			w.add("ARC-023", hdr.Name, fmt.Sprintf("link to %q", hdr.Linkname), hdrOff)
			if reason := unsafeName(hdr.Linkname); reason != "" || strings.HasPrefix(hdr.Linkname, "/") {
				w.add("ARC-014", hdr.Name, fmt.Sprintf("link target %q: %s", hdr.Linkname, reason), hdrOff)
			}
			continue
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			w.add("ARC-023", hdr.Name, fmt.Sprintf("special file (type %q)", hdr.Typeflag), hdrOff)
			continue
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		default:
			if hdr.Typeflag == tar.TypeGNUSparse || hasSparse(hdr) {
				w.add("ARC-018", hdr.Name, "sparse tar member", hdrOff)
				continue
			}
		}
		if hdr.Size < 0 || hdr.Size > w.size-dataOff {
			w.add("ARC-009", hdr.Name, fmt.Sprintf("declares %d bytes at %d, the file has %d", hdr.Size, dataOff, w.size), hdrOff)
			return nil
		}
		st := tarSeen{off: hdrOff, size: hdr.Size}
		if !w.opts.NoVerify {
			if hdr.Size > min(w.opts.MaxMemberSize, w.budget) {
				w.noteBudget(hdr.Name)
			} else {
				h := crc32.NewIEEE()
				n, err := io.Copy(h, &limitedReader{ctx: w.ctx, r: io.NewSectionReader(w.r, dataOff, hdr.Size), limit: hdr.Size})
				w.budget -= n
				if err != nil {
					if w.ctx.Err() != nil {
						return w.ctx.Err()
					}
					return fmt.Errorf("read tar member %q: %w", hdr.Name, err)
				}
				st.crc, st.ok = h.Sum32(), true
			}
		}
		if p, dup := seen[hdr.Name]; dup {
			if p.size != st.size || (p.ok && st.ok && p.crc != st.crc) {
				w.add("ARC-001", hdr.Name, fmt.Sprintf("headers at %d and %d differ (%d vs %d bytes)", p.off, hdrOff, p.size, st.size), hdrOff)
			} else {
				w.add("ARC-002", hdr.Name, fmt.Sprintf("headers at %d and %d", p.off, hdrOff), hdrOff)
			}
		} else {
			seen[hdr.Name] = st
		}
		sec := io.NewSectionReader(w.r, dataOff, hdr.Size)
		m := Member{Name: hdr.Name, Size: hdr.Size, Offset: dataOff, Raw: sec}
		m.Open = func() (io.ReadCloser, error) {
			return w.bounded(io.NewSectionReader(w.r, dataOff, hdr.Size), nil), nil
		}
		if err := w.call(m); err != nil {
			return err
		}
	}
}

func hasSparse(h *tar.Header) bool {
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// tarTail reports non-zero bytes after the end-of-archive marker (zero
// padding up to a record boundary is normal).
func (w *walker) tarTail(end int64) {
	const scan = 1 << 20
	rest := w.size - end
	if rest <= 0 {
		return
	}
	b, err := w.readFull(end, int(min(rest, scan)))
	if err != nil {
		return
	}
	for i, c := range b {
		if c != 0 {
			w.add("ARC-011", "", fmt.Sprintf("%d bytes after the end-of-archive marker, data from offset %d", rest, end+int64(i)), end+int64(i))
			w.hide("<appended>", end+int64(i), rest-int64(i))
			return
		}
	}
	if rest > scan {
		w.add("ARC-011", "", fmt.Sprintf("%d bytes after the end-of-archive marker", rest), end)
		w.hide("<appended>", end, rest)
	}
}
