package pickle

import (
	"bytes"
	"context"
	"errors"
	"io"
)

// sniffBudget is how many bytes Sniff decodes at most: a stream that is
// still well-formed after that many bytes is a pickle.
const sniffBudget = 4 << 20

var errBudget = errors.New("sniff budget spent")

// budgetReader fails with errBudget after n bytes.
type budgetReader struct {
	r io.Reader
	n int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, errBudget
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	k, err := b.r.Read(p)
	b.n -= int64(k)
	return k, err
}

// Sniff reports whether a loader that unpickles r (size bytes) from its
// start — pickle.load, torch.load's legacy path, joblib, numpy with
// allow_pickle — would run it as a pickle worth judging, whatever its
// first opcode or protocol marker: the content is decoded the way
// CPython's unpickler reads a file, and it is a pickle when
//   - a callable is imported and then called (code would run), even if the
//     stream breaks later;
//   - the first stream ends with STOP after at least three opcodes, or is
//     the whole content, or is followed by further streams that end well;
//   - nothing breaks within the first 4 MiB or 65,536 opcodes.
//
// A stream that breaks before calling anything runs no code, and text that
// happens to start with an opcode byte ("N.B.", "cat\ndog\n") is not taken
// for a pickle.
func Sniff(ctx context.Context, r io.ReaderAt, size int64) bool {
	if size <= 0 {
		return false
	}
	return sniff(ctx, io.NewSectionReader(r, 0, size), size)
}

// Looks reports whether head, the first bytes of some content whose size
// is not known, plausibly starts a pickle stream: Sniff's rules, with
// running out of head counted as running out of budget.
func Looks(head []byte) bool {
	if len(head) == 0 {
		return false
	}
	return sniff(context.Background(), io.MultiReader(bytes.NewReader(head), errReader{errBudget}), -1)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func sniff(ctx context.Context, r io.Reader, size int64) bool {
	d, err := loaded()
	if err != nil {
		// Without its checks nothing is judged a pickle here; Scan says why.
		return false
	}
	m := newMachine(ctx, d, &budgetReader{r: r, n: sniffBudget}, Options{MaxOpcodes: 1 << 16, MaxStack: 1 << 14, MaxMemo: 1 << 14, MaxStreams: 4, MaxDepth: 1 << 10}, 64<<10)
	m.sniff = true
	m.src.size = size
	firstOK := false
	for stream := 0; stream < 4; stream++ {
		if stream > 0 {
			head, err := m.src.peek(1)
			if err != nil {
				return firstOK || m.calls > 0 || size < 0
			}
			if len(head) == 0 {
				return true // the content ends after a complete stream
			}
		}
		m.resetStream()
		end, err := m.runStream(ctx)
		if err != nil {
			// The budget ran out (or the reader failed) mid-stream
			// without a break: well-formed so far.
			return errors.Is(err, errBudget) && (m.streamOps > 0 || stream > 0)
		}
		switch end {
		case endLimit:
			return true
		case endEmpty:
			return stream > 0
		case endStop:
			if m.calls > 0 || (stream == 0 && m.streamOps >= 3) {
				firstOK = true
			}
			continue
		}
		// endBreak
		if m.calls > 0 || firstOK {
			return true
		}
		return stream > 0 && m.brk.kind == breakTruncated && size < 0
	}
	return true
}
