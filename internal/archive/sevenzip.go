package archive

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/bodgit/sevenzip"
)

// sevenZip walks a 7z archive through github.com/bodgit/sevenzip. The
// library is not written for hostile input, so every call into it runs
// behind a panic guard and the byte budgets.
func (w *walker) sevenZip() (err error) {
	defer func() {
		if p := recover(); p != nil {
			w.add("ARC-019", "", fmt.Sprintf("7z reader failed on malformed input: %v", p), -1)
			err = nil
		}
	}()
	id, detail, perr := w.precheck7z()
	if perr != nil {
		return perr
	}
	if id != "" {
		w.add(id, "", detail, -1)
		return nil
	}
	zr, zerr := sevenzip.NewReader(w.r, w.size)
	if zerr != nil {
		var re *sevenzip.ReadError
		if errors.As(zerr, &re) && re.Encrypted {
			w.add("ARC-005", "", "7z header is encrypted", -1)
			return nil
		}
		w.add("ARC-019", "", fmt.Sprintf("7z: %v", zerr), -1)
		return nil
	}
	type seen struct {
		size uint64
		crc  uint32
	}
	names := map[string]seen{}
	for i, f := range zr.File {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if i >= w.opts.MaxMembers {
			w.add("ARC-015", "", fmt.Sprintf("stopped after %d members", i), -1)
			break
		}
		w.checkName(f.Name, -1)
		if f.FileInfo().IsDir() {
			continue
		}
		if f.FileInfo().Mode()&(1<<27) != 0 { // fs.ModeSymlink
			w.add("ARC-023", f.Name, "symbolic link", -1)
		}
		if p, dup := names[f.Name]; dup {
			if p.size != f.UncompressedSize || p.crc != f.CRC32 {
				w.add("ARC-001", f.Name, fmt.Sprintf("%d vs %d bytes", p.size, f.UncompressedSize), -1)
			} else {
				w.add("ARC-002", f.Name, "", -1)
			}
		} else {
			names[f.Name] = seen{f.UncompressedSize, f.CRC32}
		}
		if err := w.sevenZipCheck(f); err != nil {
			return err
		}
		size := int64(f.UncompressedSize)
		if size < 0 {
			size = -1
		}
		file := f
		m := Member{Name: f.Name, Size: size, Offset: -1, Open: func() (io.ReadCloser, error) {
			rc, err := openGuarded(file)
			if err != nil {
				return nil, err
			}
			return w.bounded(rc, rc), nil
		}}
		if err := w.call(m); err != nil {
			return err
		}
	}
	return nil
}

func openGuarded(f *sevenzip.File) (rc io.ReadCloser, err error) {
	defer func() {
		if p := recover(); p != nil {
			rc, err = nil, fmt.Errorf("7z member %q: malformed archive: %v", f.Name, p)
		}
	}()
	return f.Open()
}

// sevenZipCheck reads a member under the budgets: CRC, encryption, and
// whether it holds a pickle (the nullifAI packaging).
func (w *walker) sevenZipCheck(f *sevenzip.File) error {
	limit := min(w.opts.MaxMemberSize, w.budget)
	if f.UncompressedSize > uint64(w.opts.MaxMemberSize) {
		w.add("ARC-021", f.Name, fmt.Sprintf("%d bytes declared, limit %d", f.UncompressedSize, w.opts.MaxMemberSize), -1)
		limit = min(limit, 2)
	} else if f.UncompressedSize > uint64(w.budget) {
		w.noteBudget(f.Name)
		limit = min(limit, 2)
	}
	if w.opts.NoVerify {
		limit = min(limit, 2)
	}
	rc, err := openGuarded(f)
	if err != nil {
		var re *sevenzip.ReadError
		if errors.As(err, &re) && re.Encrypted {
			w.add("ARC-005", f.Name, "", -1)
			return nil
		}
		w.add("ARC-019", f.Name, err.Error(), -1)
		return nil
	}
	defer func() {
		defer func() { _ = recover() }()
		rc.Close()
	}()
	h := crc32.NewIEEE()
	var head [2]byte
	lr := &limitedReader{ctx: w.ctx, r: rc, limit: limit}
	n, err := readGuarded(io.MultiWriter(h, &prefix{b: head[:]}), lr)
	w.budget -= n
	if n >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5 {
		w.add("ARC-024", f.Name, fmt.Sprintf("pickle protocol %d", head[1]), -1)
	}
	switch {
	case w.ctx.Err() != nil:
		return w.ctx.Err()
	case err != nil:
		var re *sevenzip.ReadError
		if errors.As(err, &re) && re.Encrypted {
			w.add("ARC-005", f.Name, "", -1)
		} else if !errors.Is(err, ErrMemberTooLarge) {
			w.add("ARC-019", f.Name, err.Error(), -1)
		}
		return nil
	}
	if n == int64(f.UncompressedSize) && n > 0 && f.CRC32 != 0 && h.Sum32() != f.CRC32 {
		w.add("ARC-007", f.Name, fmt.Sprintf("content CRC %08x, declared %08x", h.Sum32(), f.CRC32), -1)
	}
	return nil
}

func readGuarded(dst io.Writer, src io.Reader) (n int64, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed 7z data: %v", p)
		}
	}()
	return io.Copy(dst, src)
}

// prefix keeps the first len(b) bytes written to it.
type prefix struct {
	b []byte
	n int
}

func (p *prefix) Write(b []byte) (int, error) {
	if p.n < len(p.b) {
		p.n += copy(p.b[p.n:], b)
	}
	return len(b), nil
}
