package archive

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/pythontest"
)

// fuzzWalk walks data with small limits and checks the invariants every
// input must keep: no panic, no error on in-memory input, only catalogue
// findings, member readers bounded.
func fuzzWalk(t *testing.T, data []byte, kind Kind) {
	opts := Options{MaxMembers: 64, MaxMemberSize: 1 << 20, MaxTotal: 4 << 20}
	cat := catalogueForTest(t)
	fs, err := Walk(context.Background(), bytes.NewReader(data), int64(len(data)), kind, opts, func(m Member) error {
		if m.Raw != nil && m.Raw.Size() < 0 {
			t.Errorf("member %q has a negative raw size", m.Name)
		}
		rc, err := m.Open()
		if err != nil {
			return nil
		}
		defer rc.Close()
		n, err := io.Copy(io.Discard, rc)
		if n > opts.MaxMemberSize {
			t.Errorf("member %q yielded %d bytes, limit %d", m.Name, n, opts.MaxMemberSize)
		}
		_ = errors.Is(err, ErrMemberTooLarge)
		return nil
	})
	if err != nil {
		t.Fatalf("Walk on in-memory input failed: %v", err)
	}
	for _, f := range fs {
		if _, ok := cat.Entry(f.ID); !ok {
			t.Errorf("finding %s not in catalogue", f.ID)
		}
	}
}

func seeds(f *testing.F, prefix string) {
	for _, c := range allCases() {
		// Large seeds (bombs) make the fuzzer crawl; the corpus test runs them.
		if strings.HasPrefix(c.name, prefix) && !c.large {
			f.Add(c.data())
		}
	}
}

func FuzzZip(f *testing.F) {
	seeds(f, "zip/")
	f.Fuzz(func(t *testing.T, data []byte) { fuzzWalk(t, data, Zip) })
}

func FuzzTar(f *testing.F) {
	seeds(f, "tar/")
	f.Fuzz(func(t *testing.T, data []byte) { fuzzWalk(t, data, Tar) })
}

func FuzzNpy(f *testing.F) {
	seeds(f, "npy/")
	f.Fuzz(func(t *testing.T, data []byte) { fuzzWalk(t, data, Npy) })
}

// FuzzDetect checks that Detect and DetectReader never panic and agree.
func FuzzDetect(f *testing.F) {
	seeds(f, "")
	f.Fuzz(func(t *testing.T, data []byte) {
		k := Detect(data)
		k2, err := DetectReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if k != Unknown && k2 != k {
			t.Errorf("Detect %q, DetectReader %q", k, k2)
		}
	})
}

// FuzzNpyHeader: the Python-literal header parser never panics, refuses
// or accepts deterministically, and an accepted header's data offset lies
// inside the input.
func FuzzNpyHeader(f *testing.F) {
	for _, c := range pythontest.NpyCases(7, 40) {
		f.Add(c.Data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseNpyHeader(data)
		h2, err2 := ParseNpyHeader(data)
		if (err == nil) != (err2 == nil) {
			t.Fatal("not deterministic")
		}
		if err != nil {
			return
		}
		if h.DataOffset > int64(len(data)) || h.Object != h2.Object {
			t.Fatalf("header %+v for %d bytes", h, len(data))
		}
	})
}

// FuzzPyEval: literal evaluation never panics and a value renders.
func FuzzPyEval(f *testing.F) {
	for _, s := range []string{`{'descr': '|O', 'fortran_order': False, 'shape': (3,)}`, `('\x4f' 'b', u"\N{LATIN SMALL LETTER A}", 0x1_0, 1e5j, -2, [1, {2}], set())`, `{1: 2, True: 3}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return
		}
		v, err := pyEval(s, true)
		if err == nil {
			_ = pyRepr(v)
		}
	})
}
