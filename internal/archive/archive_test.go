package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"fmt"
	"io"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"

	"github.com/llmfence/llmfence/internal/goldentest"
	"github.com/llmfence/llmfence/internal/verdict"
)

type walkResult struct {
	findings []verdict.Finding
	members  map[string][]byte
	order    []string
}

func walk(t *testing.T, data []byte, kind Kind, opts Options) walkResult {
	t.Helper()
	res := walkResult{members: map[string][]byte{}}
	fs, err := Walk(context.Background(), bytes.NewReader(data), int64(len(data)), kind, opts, func(m Member) error {
		res.order = append(res.order, m.Name)
		rc, err := m.Open()
		if err != nil {
			return nil // unsupported members are reported as findings
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err == nil {
			res.members[m.Name] = b
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	res.findings = fs
	return res
}

func ids(fs []verdict.Finding) []string {
	var out []string
	for _, f := range fs {
		if !slices.Contains(out, f.ID) {
			out = append(out, f.ID)
		}
	}
	sort.Strings(out)
	return out
}

func u16p(v uint16) *uint16 { return &v }

type archiveCase struct {
	name  string
	kind  Kind
	data  func() []byte
	opts  Options
	want  []string // exact set of finding IDs
	check func(t *testing.T, r walkResult)
	large bool // megabytes of data: kept out of fuzz seed corpora
}

func zipCases() []archiveCase {
	z := func(ms []zm, o zipOpts, patch func(b []byte, l zlayout)) func() []byte {
		return func() []byte {
			b, l := buildZip(ms, o)
			if patch != nil {
				patch(b, l)
			}
			return b
		}
	}
	goZip := func() []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for _, m := range []struct {
			n string
			d string
		}{{"config.json", `{"class_name": "Sequential"}`}, {"metadata.json", `{"keras_version": "3.5.0"}`}, {"model.weights.h5", strings.Repeat("\x89HDF", 100)}} {
			w, _ := zw.Create(m.n)
			w.Write([]byte(m.d))
		}
		zw.Close()
		return buf.Bytes()
	}
	bigText := func() []byte {
		r := rand.New(rand.NewSource(1))
		var b bytes.Buffer
		words := []string{"tensor", "layer", "weight", "bias", "model", "attention"}
		for b.Len() < 2<<20 {
			b.WriteString(words[r.Intn(len(words))])
			b.WriteByte(byte('a' + r.Intn(26)))
		}
		return b.Bytes()
	}
	hidden := localRecord("evil.pkl", encode(zm{name: "evil.pkl", data: pickleBytes}), false)
	inner := zm{name: "inner.pkl", data: pickleBytes}
	return []archiveCase{
		{name: "zip/torch-benign", kind: Zip, data: z(torchMembers(), zipOpts{}, nil), want: nil,
			check: func(t *testing.T, r walkResult) {
				if !slices.Equal(r.order, []string{"archive/data.pkl", "archive/data/0", "archive/version"}) {
					t.Errorf("members %v", r.order)
				}
				if !bytes.Equal(r.members["archive/data.pkl"], pickleBytes) {
					t.Errorf("data.pkl content %x", r.members["archive/data.pkl"])
				}
			}},
		{name: "zip/deflate-benign", large: true, kind: Zip, data: z([]zm{{name: "config.json", data: []byte(`{"a": 1}`), deflate: true}, {name: "big.txt", data: bigText(), deflate: true}}, zipOpts{}, nil), want: nil,
			check: func(t *testing.T, r walkResult) {
				if string(r.members["config.json"]) != `{"a": 1}` {
					t.Errorf("config.json = %q", r.members["config.json"])
				}
			}},
		{name: "zip/go-writer-descriptors-benign", kind: Zip, data: goZip, want: nil},
		{name: "zip/dotdot-lookalike-benign", kind: Zip, data: z([]zm{{name: "a..b/c..pkl", data: []byte("x")}, {name: "dir/", data: nil}}, zipOpts{}, nil), want: nil},
		{name: "zip/zip64-benign", kind: Zip, data: z(torchMembers(), zipOpts{zip64: true}, nil), want: nil},
		{name: "zip/descriptor-benign", kind: Zip, data: z([]zm{{name: "a.pkl", data: pickleBytes, desc: true, deflate: true}}, zipOpts{}, nil), want: nil},
		{name: "zip/duplicate-different", kind: Zip, data: z([]zm{{name: "archive/data.pkl", data: pickleBytes}, {name: "archive/data.pkl", data: []byte("\x80\x02cos\nsystem\n.")}}, zipOpts{}, nil), want: []string{"ARC-001"}},
		{name: "zip/duplicate-same", kind: Zip, data: z([]zm{{name: "a.pkl", data: pickleBytes}, {name: "a.pkl", data: pickleBytes}}, zipOpts{}, nil), want: []string{"ARC-002"}},
		{name: "zip/duplicate-nul-truncated", kind: Zip, data: z([]zm{{name: "a.pkl", data: pickleBytes}, {name: "a.pkl\x00.txt", data: []byte("hello")}}, zipOpts{}, nil), want: []string{"ARC-001"}},
		{name: "zip/local-name-differs", kind: Zip, data: z(torchMembers(), zipOpts{}, func(b []byte, l zlayout) {
			copy(b[l.local[0]+localHeaderLen:], "archive/data.pkX")
		}), want: []string{"ARC-003"}},
		{name: "zip/local-method-differs", kind: Zip, data: z(torchMembers(), zipOpts{}, func(b []byte, l zlayout) {
			put16(b, l.local[0]+8, 8)
		}), want: []string{"ARC-004"}},
		{name: "zip/local-crc-differs", kind: Zip, data: z(torchMembers(), zipOpts{}, func(b []byte, l zlayout) {
			put32(b, l.local[1]+14, 0xdeadbeef)
		}), want: []string{"ARC-004"}},
		{name: "zip/descriptor-differs", kind: Zip, data: z([]zm{{name: "a.pkl", data: pickleBytes, desc: true}}, zipOpts{}, func(b []byte, l zlayout) {
			put32(b, l.cdStart-12, 0x12345678) // descriptor CRC
		}), want: []string{"ARC-004"}},
		{name: "zip/encrypted-flag", kind: Zip, data: z([]zm{{name: "archive/data.pkl", data: pickleBytes, flags: flagEncrypt}}, zipOpts{}, nil), want: []string{"ARC-005"}},
		{name: "zip/encrypted-flag-local-only", kind: Zip, data: z(torchMembers(), zipOpts{}, func(b []byte, l zlayout) {
			put16(b, l.local[0]+6, flagEncrypt)
		}), want: []string{"ARC-004", "ARC-005"}},
		{name: "zip/reserved-flag", kind: Zip, data: z([]zm{{name: "archive/data.pkl", data: pickleBytes, flags: 1 << 4}}, zipOpts{}, nil), want: []string{"ARC-006"}},
		{name: "zip/crc-mismatch", kind: Zip, data: z(torchMembers(), zipOpts{}, func(b []byte, l zlayout) {
			put32(b, l.local[0]+14, 0xdeadbeef)
			put32(b, l.central[0]+16, 0xdeadbeef)
		}), want: []string{"ARC-007"}},
		{name: "zip/overlap", kind: Zip, data: z([]zm{{name: "outer.bin", data: localRecord(inner.name, encode(inner), false)}}, zipOpts{extraCentral: func(l *zlayout) [][]byte {
			return [][]byte{centralRecord(inner.name, encode(inner), uint32(l.data[0]), 20, 0)}
		}}, nil), want: []string{"ARC-008"}},
		{name: "zip/local-offset-out-of-bounds", kind: Zip, data: z(torchMembers(), zipOpts{}, func(b []byte, l zlayout) {
			put32(b, l.central[2]+42, uint32(len(b)+100))
		}), want: []string{"ARC-009", "ARC-012"}},
		{name: "zip/size-out-of-bounds", kind: Zip, data: z(torchMembers(), zipOpts{}, func(b []byte, l zlayout) {
			put32(b, l.central[2]+20, 1<<20)
			put32(b, l.local[2]+18, 1<<20)
		}), want: []string{"ARC-009"}},
		{name: "zip/prepended-relative", kind: Zip, data: z(torchMembers(), zipOpts{prepend: pickleBytes}, nil), want: []string{"ARC-010"},
			check: func(t *testing.T, r walkResult) {
				if !bytes.Equal(r.members["<prepended>"], pickleBytes) {
					t.Errorf("prepended bytes not handed over: %x", r.members["<prepended>"])
				}
			}},
		{name: "zip/prepended-absolute", kind: Zip, data: z(torchMembers(), zipOpts{prepend: pickleBytes, absolute: true}, nil), want: []string{"ARC-010"}},
		{name: "zip/appended", kind: Zip, data: z(torchMembers(), zipOpts{appended: []byte("\x80\x04cos\nsystem\n")}, nil), want: []string{"ARC-011"},
			check: func(t *testing.T, r walkResult) {
				if string(r.members["<appended>"]) != "\x80\x04cos\nsystem\n" {
					t.Errorf("appended bytes not handed over: %q", r.members["<appended>"])
				}
			}},
		{name: "zip/hidden-local-between", kind: Zip, data: z(torchMembers(), zipOpts{gapAfter: map[int][]byte{0: hidden}}, nil), want: []string{"ARC-012"},
			check: func(t *testing.T, r walkResult) {
				if !strings.Contains(r.findings[0].Detail, "local file header") {
					t.Errorf("detail %q does not mention the hidden header", r.findings[0].Detail)
				}
				if !bytes.Equal(r.members[fmt.Sprintf("<gap@%d>", r.findings[0].Offset)], hidden) {
					t.Errorf("gap not handed over; members %v", r.order)
				}
			}},
		{name: "zip/zip64-disagrees", kind: Zip, data: z(torchMembers(), zipOpts{zip64: true}, func(b []byte, l zlayout) {
			put16(b, l.eocd+10, 7)
		}), want: []string{"ARC-013"}},
		{name: "zip/zip64-placeholder-without-record", kind: Zip, data: z(torchMembers(), zipOpts{}, func(b []byte, l zlayout) {
			put32(b, l.central[0]+20, 0xFFFFFFFF)
		}), want: []string{"ARC-004", "ARC-009", "ARC-013"}},
		{name: "zip/traversal", kind: Zip, data: z([]zm{{name: "../../.bashrc", data: []byte("x")}, {name: "/etc/cron.d/x", data: []byte("y")}, {name: "C:\\evil", data: []byte("z")}}, zipOpts{}, nil), want: []string{"ARC-014"}},
		{name: "zip/too-many", kind: Zip, data: z(torchMembers(), zipOpts{}, nil), opts: Options{MaxMembers: 2}, want: []string{"ARC-015", "ARC-012"}},
		{name: "zip/bomb", large: true, kind: Zip, data: z([]zm{{name: "zeros", data: make([]byte, 4<<20), deflate: true}}, zipOpts{}, nil), want: []string{"ARC-016"}},
		{name: "zip/size-lie", kind: Zip, data: z([]zm{{name: "a.pkl", data: []byte("0123456789abcdef"), deflate: true}}, zipOpts{}, func(b []byte, l zlayout) {
			put32(b, l.central[0]+24, 4)
			put32(b, l.local[0]+22, 4)
		}), want: []string{"ARC-017"}},
		{name: "zip/unsupported-method", kind: Zip, data: z([]zm{{name: "a.pkl", data: pickleBytes, method: u16p(14)}}, zipOpts{}, nil), want: []string{"ARC-018"}},
		{name: "zip/no-eocd", kind: Zip, data: func() []byte { b, l := buildZip(torchMembers(), zipOpts{}); return b[:l.eocd] }, want: []string{"ARC-019"}},
		{name: "zip/corrupt-deflate", kind: Zip, data: z([]zm{{name: "c.json", data: []byte(strings.Repeat("abc", 100)), deflate: true}}, zipOpts{}, func(b []byte, l zlayout) {
			b[l.data[0]] = 0xFF
		}), want: []string{"ARC-019"}},
		{name: "zip/count-mismatch", kind: Zip, data: z(torchMembers(), zipOpts{}, func(b []byte, l zlayout) {
			put16(b, l.eocd+8, 5)
			put16(b, l.eocd+10, 5)
		}), want: []string{"ARC-020"}},
		{name: "zip/member-too-large", kind: Zip, data: z(torchMembers(), zipOpts{}, nil), opts: Options{MaxMemberSize: 32}, want: []string{"ARC-021"}},
		{name: "zip/two-eocd", kind: Zip, data: func() []byte {
			b, l := buildZip(torchMembers(), zipOpts{})
			cd := append([]byte(nil), b[l.cdStart:]...)
			put32(cd, len(cd)-eocdLen+16, uint32(len(b)))
			return append(b, cd...)
		}, want: []string{"ARC-012", "ARC-022"}},
		{name: "zip/symlink", kind: Zip, data: z([]zm{{name: "link", data: []byte("/etc/passwd")}}, zipOpts{}, func(b []byte, l zlayout) {
			put16(b, l.central[0]+4, 3<<8|20)
			put32(b, l.central[0]+38, 0o120777<<16)
		}), want: []string{"ARC-023"}},
		{name: "zip/too-deep", kind: Zip, data: z(torchMembers(), zipOpts{}, nil), opts: Options{MaxDepth: 2, Depth: 3}, want: []string{"ARC-028"}},
	}
}

func tarCases() []archiveCase {
	type tm struct {
		hdr  tar.Header
		data string
	}
	build := func(ms []tm, after []byte) func() []byte {
		return func() []byte {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, m := range ms {
				h := m.hdr
				if h.Typeflag == 0 {
					h.Typeflag = tar.TypeReg
				}
				if h.Typeflag == tar.TypeReg {
					h.Size = int64(len(m.data))
				}
				h.Mode = 0o644
				if err := tw.WriteHeader(&h); err != nil {
					panic(err)
				}
				tw.Write([]byte(m.data))
			}
			tw.Close()
			return append(buf.Bytes(), after...)
		}
	}
	legacy := []tm{{tar.Header{Name: "sys_info"}, string(pickleBytes)}, {tar.Header{Name: "pickle"}, string(pickleBytes)}, {tar.Header{Name: "tensors"}, string(pickleBytes)}, {tar.Header{Name: "storages"}, string(pickleBytes)}}
	return []archiveCase{
		{name: "tar/legacy-torch-benign", kind: Tar, data: build(legacy, nil), want: nil, check: func(t *testing.T, r walkResult) {
			if !slices.Equal(r.order, []string{"sys_info", "pickle", "tensors", "storages"}) || !bytes.Equal(r.members["pickle"], pickleBytes) {
				t.Errorf("members %v", r.order)
			}
		}},
		{name: "tar/dir-benign", kind: Tar, data: build([]tm{{tar.Header{Name: "model/", Typeflag: tar.TypeDir}, ""}, {tar.Header{Name: "model/a..b"}, "x"}}, nil), want: nil},
		{name: "tar/traversal", kind: Tar, data: build([]tm{{tar.Header{Name: "../../etc/x"}, "x"}}, nil), want: []string{"ARC-014"}},
		{name: "tar/symlink", kind: Tar, data: build([]tm{{tar.Header{Name: "pickle", Typeflag: tar.TypeSymlink, Linkname: "/root/.ssh/id_rsa"}, ""}}, nil), want: []string{"ARC-014", "ARC-023"}},
		{name: "tar/fifo", kind: Tar, data: build([]tm{{tar.Header{Name: "p", Typeflag: tar.TypeFifo}, ""}}, nil), want: []string{"ARC-023"}},
		{name: "tar/duplicate-different", kind: Tar, data: build([]tm{{tar.Header{Name: "pickle"}, string(pickleBytes)}, {tar.Header{Name: "pickle"}, "\x80\x02cos\nsystem\n."}}, nil), want: []string{"ARC-001"}},
		{name: "tar/duplicate-same", kind: Tar, data: build([]tm{{tar.Header{Name: "pickle"}, "abc"}, {tar.Header{Name: "pickle"}, "abc"}}, nil), want: []string{"ARC-002"}},
		{name: "tar/appended", kind: Tar, data: build(legacy, []byte("payload")), want: []string{"ARC-011"}, check: func(t *testing.T, r walkResult) {
			if string(r.members["<appended>"]) != "payload" {
				t.Errorf("appended bytes not handed over: %q", r.members["<appended>"])
			}
		}},
		{name: "tar/zero-padding-benign", kind: Tar, data: build(legacy, make([]byte, 10240)), want: nil},
		{name: "tar/bad-checksum", kind: Tar, data: func() []byte { b := build(legacy, nil)(); b[150] ^= 1; return b }, want: []string{"ARC-019"}},
		{name: "tar/truncated", kind: Tar, data: func() []byte {
			b := build([]tm{{tar.Header{Name: "big"}, strings.Repeat("x", 4000)}}, nil)()
			return b[:1024]
		}, want: []string{"ARC-009"}},
		{name: "tar/too-many", kind: Tar, data: build(legacy, nil), opts: Options{MaxMembers: 3}, want: []string{"ARC-015"}},
		{name: "tar/member-too-large", kind: Tar, data: build(legacy, nil), opts: Options{MaxMemberSize: 4}, want: []string{"ARC-021"}},
	}
}

func sevenCases() []archiveCase {
	bad := uint32(0x1234)
	return []archiveCase{
		{name: "7z/text-benign", kind: SevenZip, data: func() []byte { return build7z([]sevenFile{{name: "README.md", data: []byte("# model\n")}}) }, want: nil,
			check: func(t *testing.T, r walkResult) {
				if string(r.members["README.md"]) != "# model\n" {
					t.Errorf("member %q", r.members["README.md"])
				}
			}},
		{name: "7z/pickle", kind: SevenZip, data: func() []byte { return build7z([]sevenFile{{name: "archive/data.pkl", data: pickleBytes}}) }, want: []string{"ARC-024"}},
		{name: "7z/traversal-duplicate", kind: SevenZip, data: func() []byte {
			return build7z([]sevenFile{{name: "../x", data: []byte("a")}, {name: "../x", data: []byte("bb")}})
		}, want: []string{"ARC-001", "ARC-014"}},
		{name: "7z/duplicate-same", kind: SevenZip, data: func() []byte {
			return build7z([]sevenFile{{name: "x", data: []byte("a")}, {name: "x", data: []byte("a")}})
		}, want: []string{"ARC-002"}},
		{name: "7z/crc", kind: SevenZip, data: func() []byte { return build7z([]sevenFile{{name: "x", data: []byte("abc"), crc: &bad}}) }, want: []string{"ARC-007"}},
		{name: "7z/too-many", kind: SevenZip, data: func() []byte {
			return build7z([]sevenFile{{name: "a", data: []byte("a")}, {name: "b", data: []byte("b")}})
		}, opts: Options{MaxMembers: 1}, want: []string{"ARC-015"}},
		{name: "7z/too-large", kind: SevenZip, data: func() []byte { return build7z([]sevenFile{{name: "a", data: []byte("abcdef")}}) }, opts: Options{MaxMemberSize: 3}, want: []string{"ARC-021"}},
		{name: "7z/truncated", kind: SevenZip, data: func() []byte { b := build7z([]sevenFile{{name: "a", data: []byte("abcdef")}}); return b[:len(b)-5] }, want: []string{"ARC-009"}},
		{name: "7z/encoded-header-benign", kind: SevenZip, data: func() []byte {
			return encoded7z([]sevenFile{{name: "config.json", data: []byte(`{"a": 1}`)}, {name: "README", data: []byte("hi")}})
		}, want: nil, check: func(t *testing.T, r walkResult) {
			if string(r.members["config.json"]) != `{"a": 1}` || string(r.members["README"]) != "hi" {
				t.Errorf("members %q", r.members)
			}
		}},
		{name: "7z/encoded-header-pickle", kind: SevenZip, data: func() []byte { return encoded7z([]sevenFile{{name: "model.bin", data: pickleBytes}}) }, want: []string{"ARC-024"}},
		{name: "7z/claimed-files-huge", kind: SevenZip, data: func() []byte { return raw7z(nil, append([]byte{0x01, 0x05}, append(sevenNumber(0xFFFFFFFF), 0, 0)...)) }, want: []string{"ARC-015"}},
		{name: "7z/claimed-streams-huge", kind: SevenZip, data: func() []byte {
			return raw7z(nil, append([]byte{0x01, 0x04, 0x06, 0x00}, append(sevenNumber(0xFFFFFFF0), 0, 0, 0)...))
		}, want: []string{"ARC-015"}},
		{name: "7z/header-crc", kind: SevenZip, data: func() []byte { b := build7z([]sevenFile{{name: "a", data: []byte("abc")}}); b[len(b)-3] ^= 1; return b }, want: []string{"ARC-019"}},
	}
}

func npyCases() []archiveCase {
	f32 := func(n int) []byte { return make([]byte, 4*n) }
	return []archiveCase{
		{name: "npy/f4-benign", kind: Npy, data: func() []byte {
			return npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f32(6))
		}, want: nil},
		{name: "npy/structured-benign", kind: Npy, data: func() []byte {
			return npyFile(1, "{'descr': [('O', '<i4'), ('b', '<f8', (2,))], 'fortran_order': False, 'shape': (3,), }", make([]byte, 3*20))
		}, want: nil},
		{name: "npy/v2-scalar-benign", kind: Npy, data: func() []byte {
			return npyFile(2, "{'descr': '|b1', 'fortran_order': True, 'shape': (), }", []byte{1})
		}, want: nil},
		{name: "npy/object", kind: Npy, data: func() []byte {
			return npyFile(1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", pickleBytes)
		}, want: []string{"ARC-025"}, check: func(t *testing.T, r walkResult) {
			if !bytes.Equal(r.members["<pickle>"], pickleBytes) {
				t.Errorf("pickle member %x", r.members["<pickle>"])
			}
		}},
		{name: "npy/structured-object", kind: Npy, data: func() []byte {
			return npyFile(3, "{'descr': [('a', '<i4'), ('b', '|O')], 'fortran_order': False, 'shape': (1,), }", pickleBytes)
		}, want: []string{"ARC-025"}},
		{name: "npy/trailing", kind: Npy, data: func() []byte {
			return npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", append(f32(2), pickleBytes...))
		}, want: []string{"ARC-026"}},
		{name: "npy/truncated", kind: Npy, data: func() []byte {
			return npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }", f32(2))
		}, want: []string{"ARC-027"}},
		{name: "npy/overflow-shape", kind: Npy, data: func() []byte {
			return npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (9223372036854775807, 9223372036854775807), }", f32(2))
		}, want: []string{"ARC-027"}},
		{name: "npy/extra-key", kind: Npy, data: func() []byte {
			return npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", f32(1))
		}, want: []string{"ARC-027"}},
		{name: "npy/bad-version", kind: Npy, data: func() []byte { b := npyFile(1, "{}", nil); b[6] = 9; return b }, want: []string{"ARC-027"}},
		{name: "npy/huge-header", kind: Npy, data: func() []byte {
			return npyFile(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }"+strings.Repeat(" ", 20000), f32(1))
		}, want: []string{"ARC-027"}},
	}
}

func streamCases() []archiveCase {
	gz := func(p []byte) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Name = "model.pkl"
		w.Write(p)
		w.Close()
		return b.Bytes()
	}
	zl := func(p []byte) []byte {
		var b bytes.Buffer
		w := zlib.NewWriter(&b)
		w.Write(p)
		w.Close()
		return b.Bytes()
	}
	xzb := func(p []byte) []byte {
		var b bytes.Buffer
		w, _ := xz.NewWriter(&b)
		w.Write(p)
		w.Close()
		return b.Bytes()
	}
	lzb := func(p []byte) []byte {
		var b bytes.Buffer
		w, _ := lzma.NewWriter(&b)
		w.Write(p)
		w.Close()
		return b.Bytes()
	}
	content := func(t *testing.T, r walkResult) {
		for _, v := range r.members {
			if !bytes.Equal(v, pickleBytes) {
				t.Errorf("stream member %x", v)
			}
		}
		if len(r.members) != 1 {
			t.Errorf("%d members", len(r.members))
		}
	}
	random := make([]byte, 4096)
	rand.New(rand.NewSource(2)).Read(random)
	return []archiveCase{
		{name: "stream/gzip-benign", kind: Gzip, data: func() []byte { return gz(pickleBytes) }, check: content},
		{name: "stream/zlib-benign", kind: Zlib, data: func() []byte { return zl(pickleBytes) }, check: content},
		{name: "stream/xz-benign", kind: Xz, data: func() []byte { return xzb(pickleBytes) }, check: content},
		{name: "stream/lzma-benign", kind: Lzma, data: func() []byte { return lzb(pickleBytes) }, check: content},
		{name: "stream/gzip-bomb", large: true, kind: Gzip, data: func() []byte { return gz(make([]byte, 8<<20)) }, opts: Options{MaxMemberSize: 4 << 20}, want: []string{"ARC-016"}},
		{name: "stream/zlib-ratio", large: true, kind: Zlib, data: func() []byte { return zl(make([]byte, 4<<20)) }, want: []string{"ARC-016"}},
		{name: "stream/gzip-too-large", kind: Gzip, data: func() []byte { return gz(random) }, opts: Options{MaxMemberSize: 100}, want: []string{"ARC-021"}},
		{name: "stream/gzip-corrupt", kind: Gzip, data: func() []byte { b := gz(random); b[len(b)/2] ^= 0xFF; return b }, want: []string{"ARC-019"}},
		{name: "stream/gzip-traversal-name", kind: Gzip, data: func() []byte {
			var b bytes.Buffer
			w := gzip.NewWriter(&b)
			w.Name = "../../x.pkl"
			w.Write(pickleBytes)
			w.Close()
			return b.Bytes()
		}, want: []string{"ARC-014"}},
		{name: "stream/zstd-unsupported", kind: Zstd, data: func() []byte { return append(append([]byte(nil), magicZstd...), 0, 0, 0) }, want: []string{"ARC-018"}},
	}
}

func allCases() []archiveCase {
	var all []archiveCase
	for _, f := range []func() []archiveCase{zipCases, tarCases, sevenCases, npyCases, streamCases} {
		all = append(all, f()...)
	}
	return all
}

type goldenFinding struct {
	ID     string `json:"id"`
	Member string `json:"member,omitempty"`
	Offset int64  `json:"offset"`
	Detail string `json:"detail"`
}

func TestWalkCorpus(t *testing.T) {
	g := goldentest.LoadCases(t, "testdata/findings.golden.json")
	defer g.Write(t)
	for _, c := range allCases() {
		t.Run(c.name, func(t *testing.T) {
			data := c.data()
			orig := append([]byte(nil), data...)
			if k, _ := DetectReader(bytes.NewReader(data), int64(len(data))); k != c.kind && c.name != "zip/no-eocd" && c.name != "tar/bad-checksum" {
				t.Errorf("Detect = %q, want %q", k, c.kind)
			}
			r := walk(t, data, c.kind, c.opts)
			got := ids(r.findings)
			want := append([]string(nil), c.want...)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("finding IDs %v, want %v\n%s", got, want, dump(r.findings))
			}
			if c.check != nil {
				c.check(t, r)
			}
			if !bytes.Equal(data, orig) {
				t.Error("input modified")
			}
			var gs []goldenFinding
			for _, f := range r.findings {
				gs = append(gs, goldenFinding{f.ID, f.Member, f.Offset, f.Detail})
			}
			g.Check(t, c.name, gs)
		})
	}
}

func dump(fs []verdict.Finding) string {
	var sb strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&sb, "  %s %q @%d: %s\n", f.ID, f.Member, f.Offset, f.Detail)
	}
	return sb.String()
}

// TestCatalogueCovered checks that every catalogue entry is triggered by at
// least one corpus case, and that the catalogue loads.
func TestCatalogueCovered(t *testing.T) {
	cat := catalogueForTest(t)
	if cat.Version < 1 {
		t.Fatal("catalogue has no version")
	}
	hit := map[string]bool{}
	for _, c := range allCases() {
		for _, id := range c.want {
			hit[id] = true
		}
	}
	for _, e := range cat.Findings {
		if !hit[e.ID] {
			t.Errorf("%s (%s) has no corpus case", e.ID, e.Title)
		}
	}
}

// catalogueForTest loads the embedded catalogue or fails the test.
func catalogueForTest(t testing.TB) *verdict.Catalogue {
	t.Helper()
	c, err := Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	return c
}
