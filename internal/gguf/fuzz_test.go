package gguf

import (
	"bytes"
	"context"
	"testing"
)

// FuzzScan: no input makes Scan panic, hang, or return findings that are
// not in the catalogue; an error is only ever an I/O error, which a
// bytes.Reader never produces.
func FuzzScan(f *testing.F) {
	for _, tc := range scanCases {
		if b := tc.file(); len(b) < 16<<10 {
			f.Add(b)
		}
	}
	cat := catalogueForTest(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		file, fs, err := Scan(context.Background(), bytes.NewReader(b), int64(len(b)), Options{})
		if err != nil {
			t.Fatalf("Scan error on in-memory input: %v", err)
		}
		if file == nil {
			t.Fatal("nil File")
		}
		for _, fd := range fs {
			if _, ok := cat.Entry(fd.ID); !ok {
				t.Fatalf("unknown finding %s", fd.ID)
			}
		}
		for _, tn := range file.Tensors {
			if len(tn.Dims) > maxDims {
				t.Fatalf("tensor with %d dims accepted", len(tn.Dims))
			}
		}
	})
}

// FuzzTemplate: template analysis never panics and only reports catalogue
// findings.
func FuzzTemplate(f *testing.F) {
	for _, tc := range templateCases {
		if len(tc.tmpl) < 4096 {
			f.Add(tc.tmpl, tc.arch)
		}
	}
	f.Add(llama3Template, "llama")
	cat := catalogueForTest(f)
	f.Fuzz(func(t *testing.T, tmpl, arch string) {
		for _, fd := range templateFindingsT(t, tmpl, arch) {
			if _, ok := cat.Entry(fd.ID); !ok {
				t.Fatalf("unknown finding %s", fd.ID)
			}
		}
	})
}
