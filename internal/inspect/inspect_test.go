package inspect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/goldentest"
	"github.com/llmfence/llmfence/internal/pickle"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/verdict"
)

func TestCatalogueLoads(t *testing.T) {
	c, err := Catalogue()
	if err != nil {
		t.Fatal(err)
	}
	if c.Version < 1 || len(c.Findings) == 0 {
		t.Fatalf("empty catalogue: %+v", c)
	}
}

func TestSniff(t *testing.T) {
	zipWithJunk := append([]byte("JUNKJUNK"), zipFile(t, "", zmember{"a", []byte("x")})...)
	onnx := []byte{0x08, 0x07, 0x12, 0x04, 't', 'e', 's', 't'}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, FormatEmpty},
		{"gguf", ggufHeader(3), FormatGGUF},
		{"zip", zipFile(t, "", zmember{"a", []byte("x")}), FormatZip},
		{"zip with prepended bytes", zipWithJunk, FormatZip},
		{"7z", []byte("7z\xbc\xaf\x27\x1c\x00\x04"), Format7z},
		{"npy", npyFile(), FormatNPY},
		{"gzip", gzipBytes([]byte("hello")), FormatGzip},
		{"xz", []byte("\xfd7zXZ\x00\x00\x04"), FormatXZ},
		{"bzip2", []byte("BZh91AY&SY"), FormatBzip2},
		{"zlib", []byte{0x78, 0x9c, 0x01, 0x02}, FormatZlib},
		{"tar", tarFile(t, zmember{"a", []byte("x")}), FormatTar},
		{"safetensors", safetensorsFile(), FormatSafetensors},
		{"pickle protocol 2", pickleBenign2, FormatPickle},
		{"pickle protocol 0 global", pickleOSSystem, FormatPickle},
		{"pickle protocol 0 mark", []byte("(lp0\nI1\na."), FormatPickle},
		{"pickle protocol 1 empty dict", []byte("}q\x00(U\x01aK\x01u."), FormatPickle},
		{"onnx", onnx, FormatONNX},
		// look-alikes that must not be taken for a format
		{"text starting with c", []byte("cat the file\nplease read it\n"), FormatText},
		{"text in parentheses", []byte("(this is a note) and more"), FormatText},
		{"json", []byte(`{"a": 1}`), FormatText},
		{"utf-8 text cut inside a rune", []byte("caf\xc3"), FormatText},
		{"latin-1 bytes", []byte("caf\xe9 au lait"), FormatUnknown},
		{"text with NUL", []byte("abc\x00def"), FormatUnknown},
		{"PROTO with bad version", []byte("\x80\x09abc"), FormatUnknown},
		// an absurd header length makes an invalid safetensors file, not an
		// unknown one
		{"safetensors length past end", append(binary8(1000), []byte(`{"a":1}`)...), FormatSafetensors},
		{"safetensors absurd length", append(binary8(1<<62), []byte(`{"w":{"dtype":"F32"}}`)...), FormatSafetensors},
		// pickles CPython accepts whatever they start with
		{"pickle PROTO 0", append([]byte{0x80, 0}, pickleOSSystem...), FormatPickle},
		{"pickle PROTO 1", append([]byte{0x80, 1}, pickleOSSystem...), FormatPickle},
		{"pickle FRAME first", append(append([]byte{0x95}, binary8(uint64(len(pickleOSSystem)))...), pickleOSSystem...), FormatPickle},
		{"pickle signed NaN first", append([]byte("F-nan\n0"), pickleOSSystem...), FormatPickle},
		{"pickle NONE POP first", append([]byte("N0"), pickleOSSystem...), FormatPickle},
		{"pickle short string first", append([]byte("\x8c\x01a0"), pickleOSSystem...), FormatPickle},
		{"pickle persistent id first", append([]byte("Pabc\n0"), pickleOSSystem...), FormatPickle},
		{"tar v7 (no ustar magic)", tarV7(t), FormatTar},
		{"joblib zfile", joblibZFile(pickleOSSystem), FormatJoblibZ},
		{"text N.B.", []byte("N.B. this model is experimental\n"), FormatText},
		{"GGU truncated magic", []byte("GGU"), FormatText},
		{"random", randomBytes(4096, 1), FormatUnknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			head := tc.data[:min(len(tc.data), headSize)]
			tail := tc.data[max(0, len(tc.data)-headSize):]
			isPickle := func() bool { return pickle.Sniff(context.Background(), bytes.NewReader(tc.data), int64(len(tc.data))) }
			if got := sniff(head, tail, int64(len(tc.data)), isPickle, DefaultParsers().DetectContainer); got != tc.want {
				t.Fatalf("sniff = %s, want %s", got, tc.want)
			}
		})
	}
}

func binary8(n uint64) []byte {
	b := make([]byte, 8)
	for i := range 8 {
		b[i] = byte(n >> (8 * i))
	}
	return b
}

func TestExtensionDisagrees(t *testing.T) {
	cases := []struct {
		name, format string
		bad          bool
	}{
		{"model.gguf", FormatGGUF, false},
		{"model.GGUF", FormatGGUF, false},
		{"model.gguf", FormatPickle, true},
		{"pytorch_model.bin", FormatPyTorchZip, false},
		{"pytorch_model.bin", FormatUnknown, false},
		{"pytorch_model.bin", Format7z, true},
		{"model.pt", Format7z, true}, // nullifAI
		{"model.safetensors", FormatPickle, true},
		{"weights.npy", FormatNPY, false},
		{"readme.txt", FormatPickle, true},
		{"config.json", FormatUnknown, false},
		{"config.json", FormatText, false},
		{"model.gguf", FormatText, true},
		{"blob", FormatPickle, false}, // no extension promises nothing
		{"x.unknownext", FormatZip, false},
		{"empty.gguf", FormatEmpty, false},
	}
	for _, tc := range cases {
		if _, got := extensionDisagrees(tc.name, tc.format); got != tc.bad {
			t.Errorf("extensionDisagrees(%q, %s) = %v, want %v", tc.name, tc.format, got, tc.bad)
		}
	}
}

// corpusCase is one file of the orchestration corpus.
type corpusCase struct {
	name    string
	data    func(t testing.TB) []byte
	format  string
	verdict verdict.Verdict
	ids     []string // finding IDs expected, sorted, with repeats
}

func corpus() []corpusCase {
	return []corpusCase{
		{"model.gguf", func(testing.TB) []byte { return ggufHeader(3) }, FormatGGUF, verdict.Clean, nil},
		{"v9.gguf", func(testing.TB) []byte { return ggufHeader(9) }, FormatGGUF, verdict.Invalid, []string{"FAKE-GGUF"}},
		{"model.safetensors", func(testing.TB) []byte { return safetensorsFile() }, FormatSafetensors, verdict.Clean, nil},
		{"fake.safetensors", func(testing.TB) []byte { return pickleOSSystem }, FormatPickle, verdict.Malicious, []string{"FAKE-PKL", "INS-001"}},
		{"state.pkl", func(testing.TB) []byte { return pickleBenign2 }, FormatPickle, verdict.Clean, nil},
		{"pytorch_model.bin", func(t testing.TB) []byte {
			return zipFile(t, "", zmember{"archive/data.pkl", pickleOSSystem}, zmember{"archive/version", []byte("3\n")})
		}, FormatPyTorchZip, verdict.Malicious, []string{"FAKE-PKL"}},
		{"legacy.pt", func(t testing.TB) []byte {
			return tarFile(t, zmember{"sys_info", pickleBenign2}, zmember{"pickle", pickleOSSystem}, zmember{"storages", pickleBenign2}, zmember{"tensors", pickleBenign2})
		}, FormatPyTorchTar, verdict.Malicious, []string{"FAKE-PKL"}},
		{"sevenzip.pt", func(testing.TB) []byte { return []byte("7z\xbc\xaf\x27\x1c\x00\x04rest") }, Format7z, verdict.Suspicious, []string{"INS-001"}},
		{"dump.joblib", func(testing.TB) []byte { return gzipBytes(pickleOSSystem) }, FormatGzip, verdict.Malicious, []string{"FAKE-PKL"}},
		{"arrays.npz", func(t testing.TB) []byte {
			return zipFile(t, "", zmember{"a.npy", npyFile()}, zmember{"b.npy", npyFile()})
		}, FormatNPZ, verdict.Clean, nil},
		{"model.keras", func(t testing.TB) []byte {
			return zipFile(t, "", zmember{"config.json", []byte(`{"class_name":"Lambda"}`)}, zmember{"metadata.json", []byte(`{}`)})
		}, FormatKeras, verdict.Malicious, []string{"FAKE-KERAS"}},
		{"benign.keras", func(t testing.TB) []byte {
			return zipFile(t, "", zmember{"config.json", []byte(`{"class_name":"Dense"}`)}, zmember{"metadata.json", []byte(`{}`)})
		}, FormatKeras, verdict.Clean, nil},
		{"trick.zip", func(t testing.TB) []byte {
			return zipFile(t, "TRICK", zmember{"unopenable", []byte("x")}, zmember{"weights.gguf", pickleOSSystem})
		}, FormatZip, verdict.Malicious, []string{"FAKE-ARC", "FAKE-PKL", "INS-001", "INS-008"}},
		{"deep.zip", func(t testing.TB) []byte { return nestedZip(t, pickleOSSystem, 6) }, FormatZip, verdict.Suspicious, []string{"INS-005"}},
		{"shallow.zip", func(t testing.TB) []byte { return nestedZip(t, pickleOSSystem, 3) }, FormatZip, verdict.Malicious, []string{"FAKE-PKL", "INS-001"}},
		{"big.zip", func(t testing.TB) []byte { return zipFile(t, "", zmember{"huge.bin", make([]byte, 3<<20)}) }, FormatZip, verdict.Suspicious, []string{"INS-006"}},
		{"noise.dat", func(testing.TB) []byte { return randomBytes(200<<10, 2) }, FormatUnknown, verdict.NotInspected, []string{"INS-002"}},
		{"polyglot.png", func(testing.TB) []byte {
			return append(append([]byte("\x89PNG\r\n\x1a\n"), randomBytes(500, 3)...), append([]byte("\x80\x02"), pickleOSSystem...)...)
		}, FormatUnknown, verdict.Malicious, []string{"FAKE-PKL", "INS-003"}},
		// torch.load on a .bin that is not a zip unpickles it, whatever it
		// looks like.
		{"polyglot.bin", func(testing.TB) []byte { return append(ggufHeader(3), pickleOSSystem...) }, FormatGGUF, verdict.Malicious, []string{"FAKE-PKL", "INS-021"}},
		{"crash.pkl", func(testing.TB) []byte { return []byte("\x80\x02PANIC.") }, FormatPickle, verdict.Invalid, []string{"INS-009"}},
		{"empty.bin", func(testing.TB) []byte { return nil }, FormatEmpty, verdict.Clean, nil},
		{"onnx.onnx", func(testing.TB) []byte { return []byte{0x08, 0x07, 0x12, 0x04, 't', 'e', 's', 't'} }, FormatONNX, verdict.Suspicious, []string{"INS-008"}},
	}
}

func newTestInspector(t testing.TB, p *Parsers, mod func(*Options)) *Inspector {
	t.Helper()
	opts := Options{Workers: 2, Parsers: p, MaxMemberSize: 2 << 20, MemberMemory: 64 << 10, TempDir: t.TempDir()}
	if mod != nil {
		mod(&opts)
	}
	in, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func ids(fs []verdict.Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.ID)
	}
	sort.Strings(out)
	return out
}

func TestInspectCorpus(t *testing.T) {
	dir := t.TempDir()
	for _, c := range corpus() {
		writeFile(t, dir, c.name, c.data(t))
	}
	in := newTestInspector(t, fakeParsers(t), nil)
	got := map[string]*Result{}
	var order []string
	sum, err := in.Inspect(context.Background(), []string{dir}, func(r *Result) error {
		rel, _ := filepath.Rel(dir, r.Path)
		got[rel] = r
		order = append(order, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSorted(order) {
		t.Errorf("results not in walk order: %v", order)
	}
	for _, c := range corpus() {
		t.Run(c.name, func(t *testing.T) {
			r := got[c.name]
			if r == nil {
				t.Fatal("no result")
			}
			data := c.data(t)
			sum := sha256.Sum256(data)
			if r.SHA256 != hex.EncodeToString(sum[:]) || r.Size != int64(len(data)) {
				t.Errorf("sha256/size = %s/%d, want %x/%d", r.SHA256, r.Size, sum, len(data))
			}
			if r.Format != c.format || r.Verdict != c.verdict || r.Error != "" {
				t.Errorf("format, verdict, error = %s, %s, %q; want %s, %s", r.Format, r.Verdict, r.Error, c.format, c.verdict)
			}
			want := append([]string{}, c.ids...)
			if want == nil {
				want = []string{}
			}
			sort.Strings(want)
			if g := ids(r.Findings); !slices.Equal(g, want) {
				t.Errorf("findings = %v, want %v\n%+v", g, want, r.Findings)
			}
		})
	}
	if sum.Files != len(corpus()) || sum.Errors != 0 {
		t.Errorf("summary = %+v", sum)
	}
	// Member attribution: the pickle inside the PyTorch zip names its member.
	for _, f := range got["pytorch_model.bin"].Findings {
		if f.Member != "archive/data.pkl" {
			t.Errorf("finding member = %q, want archive/data.pkl", f.Member)
		}
	}
	for _, f := range got["shallow.zip"].Findings {
		if f.Member != "inner.zip!inner.zip!inner.zip" {
			t.Errorf("nested finding member = %q", f.Member)
		}
	}
}

// TestInspectGolden pins the JSON of a few results (paths made relative).
func TestInspectGolden(t *testing.T) {
	dir := t.TempDir()
	for _, c := range corpus() {
		switch c.name {
		case "pytorch_model.bin", "trick.zip", "polyglot.png", "model.gguf", "sevenzip.pt":
			writeFile(t, dir, c.name, c.data(t))
		}
	}
	in := newTestInspector(t, fakeParsers(t), nil)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	_, err := in.Inspect(context.Background(), []string{dir}, func(r *Result) error {
		rel, _ := filepath.Rel(dir, r.Path)
		r.Path = rel
		return enc.Encode(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	goldentest.Check(t, filepath.Join("testdata", "inspect.golden.jsonl"), buf.Bytes())
}

func TestInspectedFilesUnchanged(t *testing.T) {
	dir := t.TempDir()
	before := map[string][]byte{}
	for _, c := range corpus() {
		d := c.data(t)
		writeFile(t, dir, c.name, d)
		before[c.name] = d
	}
	in := newTestInspector(t, fakeParsers(t), nil)
	if _, err := in.Inspect(context.Background(), []string{dir}, func(*Result) error { return nil }); err != nil {
		t.Fatal(err)
	}
	for name, d := range before {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, d) {
			t.Errorf("%s changed by inspection", name)
		}
	}
}

// TestHashLargeFile: a multi-chunk file hashes correctly both when a
// stream parser reads part of it through the hashing pass (pickle) and when
// it is hashed alone.
func TestHashLargeFile(t *testing.T) {
	dir := t.TempDir()
	body := randomBytes(3<<20+12345, 4)
	files := map[string][]byte{
		"big.pkl":  append(append([]byte{}, pickleOSSystem[:len(pickleOSSystem)-1]...), body...),
		"big.gguf": append(ggufHeader(3), body...),
		"big.dat":  body,
	}
	for name, d := range files {
		writeFile(t, dir, name, d)
	}
	in := newTestInspector(t, fakeParsers(t), nil)
	_, err := in.Inspect(context.Background(), []string{dir}, func(r *Result) error {
		want := sha256.Sum256(files[filepath.Base(r.Path)])
		if r.SHA256 != hex.EncodeToString(want[:]) {
			t.Errorf("%s: sha256 %s, want %x", r.Path, r.SHA256, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMemberSpill: a member larger than MemberMemory is spooled to a
// temporary file, inspected the same way, and the file is removed.
func TestMemberSpill(t *testing.T) {
	dir := t.TempDir()
	payload := append(append([]byte{}, pickleOSSystem...), randomBytes(300<<10, 5)...)
	writeFile(t, dir, "m.zip", zipFile(t, "", zmember{"data.pkl", payload}))
	tmp := t.TempDir()
	in := newTestInspector(t, fakeParsers(t), func(o *Options) { o.TempDir = tmp; o.MemberMemory = 4 << 10 })
	r := in.InspectFile(context.Background(), filepath.Join(dir, "m.zip"), "")
	if r.Verdict != verdict.Malicious {
		t.Errorf("verdict %s, findings %+v", r.Verdict, r.Findings)
	}
	ms := r.Metadata["members"].([]memberEntry)
	sum := sha256.Sum256(payload)
	if len(ms) != 1 || ms[0].SHA256 != hex.EncodeToString(sum[:]) || ms[0].Size != int64(len(payload)) {
		t.Errorf("members = %+v", ms)
	}
	left, _ := os.ReadDir(tmp)
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestMaxFileSize(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "x.pkl", pickleOSSystem)
	in := newTestInspector(t, fakeParsers(t), func(o *Options) { o.MaxFileSize = 5 })
	r := in.InspectFile(context.Background(), p, "")
	if g := ids(r.Findings); !slices.Equal(g, []string{"INS-004"}) || r.Format != FormatPickle || r.SHA256 == "" {
		t.Errorf("got %v %s %q", g, r.Format, r.SHA256)
	}
}

func TestFileGrowsDuringInspection(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "m.gguf", ggufHeader(3))
	ps := fakeParsers(t)
	ps.GGUF = fakeGGUF{cat: fakeCatalogue(t), grow: p}
	in := newTestInspector(t, ps, nil)
	r := in.InspectFile(context.Background(), p, "")
	if g := ids(r.Findings); !slices.Equal(g, []string{"INS-019"}) {
		t.Errorf("findings %v", g)
	}
}

func TestNoParsers(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "m.gguf", ggufHeader(3))
	in := newTestInspector(t, &Parsers{}, nil)
	r := in.InspectFile(context.Background(), p, "")
	if g := ids(r.Findings); !slices.Equal(g, []string{"INS-008"}) || r.Verdict != verdict.Suspicious {
		t.Errorf("findings %v verdict %s", g, r.Verdict)
	}
}

func TestSymlinks(t *testing.T) {
	outside := t.TempDir()
	secret := writeFile(t, outside, "secret.pkl", pickleOSSystem)
	root := t.TempDir()
	inner := writeFile(t, root, "model.gguf", ggufHeader(3))
	if err := os.Symlink(secret, filepath.Join(root, "escape.bin")); err != nil {
		t.Skip("symlinks not supported:", err)
	}
	os.Symlink(inner, filepath.Join(root, "alias.gguf"))
	os.Symlink(filepath.Join(root, "nowhere"), filepath.Join(root, "dangling"))
	os.Symlink(outside, filepath.Join(root, "outdir"))
	os.Symlink(root, filepath.Join(root, "loop"))

	run := func(follow bool) map[string]*Result {
		in := newTestInspector(t, fakeParsers(t), func(o *Options) { o.FollowSymlinks = follow })
		got := map[string]*Result{}
		if _, err := in.Inspect(context.Background(), []string{root}, func(r *Result) error {
			got[r.Path] = r
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := run(false)
	if r := got[filepath.Join(root, "escape.bin")]; r == nil || !slices.Equal(ids(r.Findings), []string{"INS-007"}) || r.Verdict != verdict.Suspicious {
		t.Errorf("escape.bin: %+v", r)
	}
	if r := got[filepath.Join(root, "outdir")]; r == nil || !slices.Equal(ids(r.Findings), []string{"INS-007"}) {
		t.Errorf("outdir: %+v", r)
	}
	if r := got[filepath.Join(root, "alias.gguf")]; r == nil || r.Format != FormatGGUF {
		t.Errorf("alias.gguf: %+v", r)
	}
	if r := got[filepath.Join(root, "dangling")]; r == nil || r.Error == "" {
		t.Errorf("dangling: %+v", r)
	}
	if len(got) != 5 {
		t.Errorf("results for %d paths, want 5 (loop not walked)", len(got))
	}
	got = run(true)
	if r := got[filepath.Join(root, "escape.bin")]; r == nil || r.Verdict != verdict.Malicious {
		t.Errorf("followed escape.bin: %+v", r)
	}
	if r := got[secret]; r == nil || r.Verdict != verdict.Malicious {
		t.Errorf("followed outdir: missing %s in %v", secret, keys(got))
	}
}

func keys(m map[string]*Result) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestMissingPath(t *testing.T) {
	in := newTestInspector(t, fakeParsers(t), nil)
	var rs []*Result
	sum, err := in.Inspect(context.Background(), []string{filepath.Join(t.TempDir(), "nope")}, func(r *Result) error {
		rs = append(rs, r)
		return nil
	})
	if err != nil || len(rs) != 1 || rs[0].Error == "" || sum.Errors != 1 || !strings.Contains(rs[0].Error, "no such file") {
		t.Fatalf("err %v results %+v summary %+v", err, rs, sum)
	}
}

func TestCancelled(t *testing.T) {
	dir := t.TempDir()
	for _, c := range corpus() {
		writeFile(t, dir, c.name, c.data(t))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in := newTestInspector(t, fakeParsers(t), nil)
	if _, err := in.Inspect(ctx, []string{dir}, func(*Result) error { return nil }); err == nil {
		t.Fatal("no error on a cancelled context")
	}
}

func TestFails(t *testing.T) {
	r := &Result{Findings: []verdict.Finding{{ID: "X", Severity: service.SeverityMedium}}}
	cases := []struct {
		th   service.Severity
		want bool
	}{{service.SeverityHigh, false}, {service.SeverityMedium, true}, {service.SeverityInfo, true}, {service.SeverityNone, true}, {service.SeverityCritical, false}}
	for _, c := range cases {
		if got := r.Fails(c.th); got != c.want {
			t.Errorf("Fails(%s) = %v", c.th, got)
		}
	}
	if (&Result{}).Fails(service.SeverityNone) {
		t.Error("no findings must not fail")
	}
}

// TestEmitErrorStops: an error from emit ends the run and is returned.
func TestEmitErrorStops(t *testing.T) {
	dir := t.TempDir()
	for _, c := range corpus() {
		writeFile(t, dir, c.name, c.data(t))
	}
	in := newTestInspector(t, fakeParsers(t), nil)
	stop := errors.New("stop")
	n := 0
	_, err := in.Inspect(context.Background(), []string{dir}, func(*Result) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("err %v after %d results", err, n)
	}
}
