package archive

import (
	"compress/bzip2"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"

	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// maxDict bounds the dictionary an xz/lzma stream may ask for (the largest
// standard preset uses 64 MiB).
const maxDict = 64 << 20

// openStream returns a decompressor over the whole file for kind.
func (w *walker) openStream(kind Kind) (io.Reader, io.Closer, error) {
	src := io.NewSectionReader(w.r, 0, w.size)
	switch kind {
	case Gzip:
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, nil, err
		}
		return zr, zr, nil
	case Zlib:
		zr, err := zlib.NewReader(src)
		if err != nil {
			return nil, nil, err
		}
		return zr, zr, nil
	case JoblibZ:
		zr, err := zlib.NewReader(io.NewSectionReader(w.r, joblibZHeader, w.size-joblibZHeader))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr, nil
	case Bzip2:
		return bzip2.NewReader(src), nil, nil
	case Xz:
		xr, err := xz.ReaderConfig{DictCap: maxDict}.NewReader(src)
		return xr, nil, err
	case Lzma:
		lr, err := lzma.ReaderConfig{DictCap: maxDict}.NewReader(src)
		return lr, nil, err
	}
	return nil, nil, fmt.Errorf("%w: %s", ErrUnsupported, kind)
}

// stream walks a single compressed stream (joblib dumps, .gz files): one
// member, the decompressed data.
func (w *walker) stream(kind Kind) error {
	name := ""
	if kind == Gzip {
		if zr, err := gzip.NewReader(io.NewSectionReader(w.r, 0, w.size)); err == nil {
			name = zr.Name
			w.checkName(name, 10)
			zr.Close()
		}
	}
	if !w.opts.NoVerify {
		rd, c, err := w.openStream(kind)
		if err != nil {
			w.add("ARC-019", name, fmt.Sprintf("%s stream: %v", kind, err), 0)
			return nil
		}
		limit := min(w.opts.MaxMemberSize, w.budget)
		n, err := io.Copy(io.Discard, &limitedReader{ctx: w.ctx, r: rd, limit: limit})
		if c != nil {
			c.Close()
		}
		w.budget -= n
		ratio := n / max(w.size, 1)
		switch {
		case w.ctx.Err() != nil:
			return w.ctx.Err()
		case errors.Is(err, ErrMemberTooLarge) && ratio > w.opts.MaxRatio:
			w.add("ARC-016", name, fmt.Sprintf("more than %d bytes from %d compressed", n, w.size), 0)
		case errors.Is(err, ErrMemberTooLarge):
			w.add("ARC-021", name, fmt.Sprintf("more than %d bytes decompressed", n), 0)
		case err != nil:
			w.add("ARC-019", name, fmt.Sprintf("%s stream: %v", kind, err), 0)
		case n >= 1<<20 && ratio > w.opts.MaxRatio:
			w.add("ARC-016", name, fmt.Sprintf("%d bytes from %d compressed (ratio %d)", n, w.size, ratio), 0)
		}
	}
	return w.call(Member{Name: name, Size: -1, Offset: -1, Open: func() (io.ReadCloser, error) {
		rd, c, err := w.openStream(kind)
		if err != nil {
			return nil, fmt.Errorf("open %s stream: %w", kind, err)
		}
		return w.bounded(rd, c), nil
	}})
}
