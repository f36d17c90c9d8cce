package safetensors

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/goldentest"
	"github.com/llmfence/llmfence/internal/verdict"
)

// stFile writes a safetensors file: 8-byte length, header, data.
func stFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func idSet(fs []verdict.Finding) []string {
	var out []string
	for _, f := range fs {
		if !slices.Contains(out, f.ID) {
			out = append(out, f.ID)
		}
	}
	sort.Strings(out)
	return out
}

func dump(fs []verdict.Finding) string {
	var sb strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&sb, "  %s @%d: %s\n", f.ID, f.Offset, f.Detail)
	}
	return sb.String()
}

type stCase struct {
	name string
	data func() []byte
	want []string
}

const (
	tA = `"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}`
	tB = `"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}`
)

func stCases() []stCase {
	f := func(h string, n int) func() []byte { return func() []byte { return stFile(h, make([]byte, n)) } }
	manyMeta := func() []byte {
		var sb strings.Builder
		sb.WriteString(`{"__metadata__":{`)
		for i := 0; i < 2000; i++ {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `"k%d":"v"`, i)
		}
		sb.WriteString(`},` + tA + `}`)
		return stFile(sb.String(), make([]byte, 16))
	}
	return []stCase{
		{"benign", f(`{"__metadata__":{"format":"pt"},`+tA+`,`+tB+`}`, 22), nil},
		{"benign-padded", f(`{`+tA+`}        `, 16), nil},
		{"benign-unordered-keys", f(`{`+tB+`,`+tA+`}`, 22), nil},
		{"benign-small-dtypes", f(`{"q":{"dtype":"F4","shape":[4],"data_offsets":[0,2]},"s":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[2,5]},"z":{"dtype":"U8","shape":[0],"data_offsets":[5,5]},"c":{"dtype":"F64","shape":[],"data_offsets":[5,13]}}`, 13), nil},
		{"benign-empty", f(`{}`, 0), nil},
		{"benign-metadata-null", f(`{"__metadata__":null,`+tA+`}`, 16), nil},
		{"too-short", func() []byte { return []byte{1, 2, 3} }, []string{"ST-001"}},
		{"header-over-cap", func() []byte { return binary.LittleEndian.AppendUint64(nil, 200_000_000) }, []string{"ST-002"}},
		{"header-past-eof", func() []byte { return append(binary.LittleEndian.AppendUint64(nil, 1000), `{"a":1}`...) }, []string{"ST-003"}},
		{"not-object", f(`[1, 2, 3]`, 0), []string{"ST-004"}},
		{"bad-json", f(`{"a": {`, 0), []string{"ST-004"}},
		{"bad-utf8", f("{\"a\xff\":1}", 0), []string{"ST-004"}},
		{"tensor-not-object", f(`{"a": 5}`, 0), []string{"ST-004"}},
		{"too-deep", f(`{"a":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`}`, 0), []string{"ST-004"}},
		{"duplicate-tensor", f(`{`+tA+`,"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 16), []string{"ST-005", "ST-013"}},        // the last "a" is the tensor
		{"duplicate-field", f(`{"a":{"dtype":"F32","dtype":"F64","shape":[4],"data_offsets":[0,16]}}`, 16), []string{"ST-005", "ST-009"}}, // F64 wins
		{"unknown-dtype", f(`{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, 16), []string{"ST-006"}},
		{"negative-dim", f(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,16]}}`, 16), []string{"ST-007"}},
		{"float-dim", f(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,16]}}`, 16), []string{"ST-007"}},
		{"overflow-shape", f(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}`, 16), []string{"ST-007"}},
		{"offsets-one", f(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[16]}}`, 16), []string{"ST-008", "ST-013"}},
		{"offsets-reversed", f(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}}`, 16), []string{"ST-008", "ST-013"}},
		{"size-mismatch", f(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4), []string{"ST-009"}},
		{"overlap", f(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12), []string{"ST-010"}},
		{"gap", f(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12), []string{"ST-011"}},
		{"out-of-bounds", f(`{`+tA+`}`, 8), []string{"ST-012"}},
		{"trailing", f(`{`+tA+`}`, 100), []string{"ST-013"}},
		{"metadata-not-string", f(`{"__metadata__":{"x":1},`+tA+`}`, 16), []string{"ST-014"}},
		{"metadata-not-object", f(`{"__metadata__":[1],`+tA+`}`, 16), []string{"ST-014"}},
		{"metadata-huge", manyMeta, []string{"ST-015"}},
		{"unknown-field", f(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16],"payload":"x"}}`, 16), []string{"ST-016"}},
		{"junk-after-json", f(`{`+tA+`}  xx`, 16), []string{"ST-017"}},
	}
}

type stGolden struct {
	Header   *Header           `json:"header"`
	Findings []verdict.Finding `json:"findings"`
}

func TestScanCorpus(t *testing.T) {
	g := goldentest.LoadCases(t, "testdata/safetensors.golden.json")
	defer g.Write(t)
	for _, c := range stCases() {
		t.Run(c.name, func(t *testing.T) {
			data := c.data()
			h, fs, err := Scan(context.Background(), bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			want := append([]string(nil), c.want...)
			sort.Strings(want)
			if got := idSet(fs); !slices.Equal(got, want) {
				t.Errorf("IDs %v, want %v\n%s", got, want, dump(fs))
			}
			if len(data) >= 9 && data[8] == '{' && c.name != "header-over-cap" && !Looks(data) {
				t.Error("Looks = false for a safetensors file")
			}
			g.Check(t, c.name, stGolden{h, fs})
		})
	}
}

func TestScanHeader(t *testing.T) {
	data := stFile(`{"__metadata__":{"format":"pt"},`+tA+`,`+tB+`}`, make([]byte, 22))
	h, _, err := Scan(context.Background(), bytes.NewReader(data), int64(len(data)))
	if err != nil || h == nil {
		t.Fatalf("Scan: %v", err)
	}
	if h.Params != 7 || h.DataSize != 22 || len(h.Tensors) != 2 || h.Metadata["format"] != "pt" {
		t.Errorf("header %+v", h)
	}
	if h.Tensors[1].Name != "b" || !slices.Equal(h.Tensors[1].Shape, []int64{3}) || h.Tensors[1].Begin != 16 || h.Tensors[1].End != 22 {
		t.Errorf("tensor b %+v", h.Tensors[1])
	}
}

func TestLooks(t *testing.T) {
	for _, c := range []struct {
		head []byte
		want bool
	}{
		{stFile(`{"a":1}`, nil), true},
		{[]byte("GGUF\x03\x00\x00\x00\x00"), false},
		{[]byte{0x80, 0x04, 0x95, 0x10, 0, 0, 0, 0, 0, 0, 0, '}'}, false},
		{[]byte{0x80, 0x04, 0x95, 0, 0, 0, 0, 0, '{', 'x'}, false},
		{binary.LittleEndian.AppendUint64(nil, 200_000_000), false},
		{[]byte("PK\x03\x04"), false},
	} {
		if got := Looks(c.head); got != c.want {
			t.Errorf("Looks(%q) = %v", c.head, got)
		}
	}
}

func TestCataloguesCovered(t *testing.T) {
	hit := map[string]bool{}
	for _, c := range stCases() {
		for _, id := range c.want {
			hit[id] = true
		}
	}
	for _, c := range kerasCases() {
		for _, id := range c.want {
			hit[id] = true
		}
	}
	for _, c := range onnxCases() {
		for _, id := range c.want {
			hit[id] = true
		}
	}
	for _, cat := range catalogues(t) {
		if cat.Version < 1 {
			t.Error("catalogue without version")
		}
		for _, e := range cat.Findings {
			if !hit[e.ID] {
				t.Errorf("%s (%s) has no test case", e.ID, e.Title)
			}
		}
	}
	if dataForTest(t).rules.Version < 1 {
		t.Error("rules.yaml without version")
	}
}

// dataForTest loads the embedded data or fails the test.
func dataForTest(t testing.TB) *data {
	t.Helper()
	d, err := loaded()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// catalogues are the package's three catalogues, loaded or failing the test.
func catalogues(t testing.TB) []*verdict.Catalogue {
	d := dataForTest(t)
	return []*verdict.Catalogue{d.st, d.keras, d.onnx}
}
