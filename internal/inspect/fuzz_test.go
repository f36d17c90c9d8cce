package inspect

import (
	"bytes"
	"context"
	"testing"
)

// FuzzExamine runs arbitrary content through sniffing and the real parsers
// (archives recursively). Nothing may panic (a parser panic would surface
// as INS-009), and every result must be well-formed.
func FuzzExamine(f *testing.F) {
	for _, c := range corpus() {
		f.Add(c.data(f))
	}
	f.Add(onnxWith("x"))
	f.Add(npyFile())
	f.Add(append([]byte("JUNK"), zipFile(f, "", zmember{"a.pkl", pickleOSSystem})...))
	in, err := New(Options{Workers: 1, MaxMemberSize: 1 << 20, MemberMemory: 1 << 20, TempDir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		head, tail, err := headTail(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		n, err := in.examine(context.Background(), &content{name: "x.bin", ra: bytes.NewReader(data), size: int64(len(data)), head: head, tail: tail})
		if err != nil {
			return // an I/O error of the top-level content is allowed
		}
		if n.format == "" {
			t.Fatal("no format")
		}
		for _, fd := range n.findings {
			if fd.ID == "INS-009" {
				t.Fatalf("parser crashed: %s", fd.Detail)
			}
			if fd.ID == "" || fd.Severity.Rank() == 0 {
				t.Fatalf("malformed finding %+v", fd)
			}
			if !fd.Verdict.Known() {
				t.Fatalf("bad verdict in %+v", fd)
			}
		}
	})
}

// FuzzSniff: the sniffer is total and agrees with itself.
func FuzzSniff(f *testing.F) {
	for _, c := range corpus() {
		f.Add(c.data(f))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a := sniff(data, data, int64(len(data)), nil, nil)
		b := sniff(data, data, int64(len(data)), nil, nil)
		if a != b || a == "" {
			t.Fatalf("sniff unstable or empty: %q %q", a, b)
		}
	})
}
