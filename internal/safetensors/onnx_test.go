package safetensors

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/goldentest"
	"github.com/llmfence/llmfence/internal/verdict"
)

// Protobuf wire-format writers for the test corpus.
func pbVarint(field int, v uint64) []byte {
	b := binary.AppendUvarint(nil, uint64(field)<<3)
	return binary.AppendUvarint(b, v)
}

func pbBytes(field int, p []byte) []byte {
	b := binary.AppendUvarint(nil, uint64(field)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func pbStr(field int, s string) []byte { return pbBytes(field, []byte(s)) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func entry(k, v string) []byte { return pbBytes(13, cat(pbStr(1, k), pbStr(2, v))) }

// extTensor is a TensorProto stored externally at loc.
func extTensor(name, loc string) []byte {
	return cat(pbVarint(1, 4), pbVarint(2, 1), pbStr(8, name), entry("location", loc), entry("offset", "0"), entry("length", "16"), pbVarint(14, 1))
}

func rawTensor(name string, n int) []byte {
	return cat(pbVarint(1, uint64(n/4)), pbVarint(2, 1), pbStr(8, name), pbBytes(9, make([]byte, n)))
}

func node(op, domain string, attrs ...[]byte) []byte {
	parts := [][]byte{pbStr(1, "x"), pbStr(2, "y"), pbStr(4, op)}
	for _, a := range attrs {
		parts = append(parts, pbBytes(5, a))
	}
	if domain != "" {
		parts = append(parts, pbStr(7, domain))
	}
	return cat(parts...)
}

func model(graph []byte, opsets ...[]byte) []byte {
	parts := [][]byte{pbVarint(1, 8), pbStr(2, "pytorch"), pbStr(3, "2.4.0"), pbBytes(7, graph)}
	if len(opsets) == 0 {
		opsets = [][]byte{cat(pbStr(1, ""), pbVarint(2, 17))}
	}
	for _, o := range opsets {
		parts = append(parts, pbBytes(8, o))
	}
	return cat(parts...)
}

func graph(nodes [][]byte, inits [][]byte) []byte {
	var parts [][]byte
	for _, n := range nodes {
		parts = append(parts, pbBytes(1, n))
	}
	parts = append(parts, pbStr(2, "main"))
	for _, i := range inits {
		parts = append(parts, pbBytes(5, i))
	}
	return cat(parts...)
}

type onnxCase struct {
	name string
	data func() []byte
	want []string
}

func onnxCases() []onnxCase {
	relu := node("Relu", "")
	m := func(nodes [][]byte, inits ...[]byte) func() []byte {
		return func() []byte { return model(graph(nodes, inits)) }
	}
	// An If node whose then-branch subgraph holds an escaping initializer.
	ifNode := node("If", "", cat(pbStr(1, "then_branch"), pbBytes(6, graph([][]byte{relu}, [][]byte{extTensor("w2", "../../../home/u/.ssh/id_rsa")})), pbVarint(20, 5)))
	deep := func() []byte {
		g := graph([][]byte{relu}, nil)
		for i := 0; i < 40; i++ {
			g = graph([][]byte{node("If", "", cat(pbStr(1, "b"), pbBytes(6, g)))}, nil)
		}
		return model(g)
	}
	return []onnxCase{
		{"benign-internal", m([][]byte{relu}, rawTensor("w", 4096)), nil},
		{"benign-external", m([][]byte{relu}, extTensor("w", "weights.bin"), extTensor("v", "sub/dir/v..bin")), nil},
		{"benign-ms-domain", func() []byte {
			return model(graph([][]byte{node("FusedMatMul", "com.microsoft")}, nil), cat(pbStr(1, ""), pbVarint(2, 17)), cat(pbStr(1, "com.microsoft"), pbVarint(2, 1)))
		}, nil},
		{"escape-dotdot", m([][]byte{relu}, extTensor("w", "../../etc/passwd")), []string{"ONNX-001"}},
		{"escape-absolute", m([][]byte{relu}, extTensor("w", "/etc/shadow")), []string{"ONNX-001"}},
		{"escape-windows", m([][]byte{relu}, extTensor("w", `C:\Windows\win.ini`), extTensor("v", `..\..\x`)), []string{"ONNX-001"}},
		{"escape-in-subgraph", m([][]byte{ifNode}), []string{"ONNX-001"}},
		{"truncated", func() []byte { b := model(graph([][]byte{relu}, [][]byte{rawTensor("w", 64)})); return b[:len(b)-10] }, []string{"ONNX-002"}},
		{"bad-wiretype", func() []byte { return append(model(graph([][]byte{relu}, nil)), 0x0B) }, []string{"ONNX-002"}},
		{"overrun", func() []byte {
			g := graph([][]byte{relu}, nil)
			b := cat(pbVarint(1, 8), binary.AppendUvarint([]byte{7<<3 | 2}, uint64(len(g)+100)), g)
			return b
		}, []string{"ONNX-002"}},
		{"too-deep", deep, []string{"ONNX-002"}},
		{"ext-no-location", m([][]byte{relu}, cat(pbStr(8, "w"), entry("offset", "0"), pbVarint(14, 1))), []string{"ONNX-003"}},
		{"ext-bad-offset", m([][]byte{relu}, cat(pbStr(8, "w"), entry("location", "w.bin"), entry("offset", "-5"), pbVarint(14, 1))), []string{"ONNX-003"}},
		{"ext-not-external", m([][]byte{relu}, cat(pbStr(8, "w"), entry("location", "w.bin"))), []string{"ONNX-003"}},
		{"custom-domain", m([][]byte{node("Backdoor", "com.evil.ops")}), []string{"ONNX-004"}},
	}
}

type onnxGolden struct {
	Info     *ONNXInfo         `json:"info"`
	Findings []verdict.Finding `json:"findings"`
}

func TestScanONNX(t *testing.T) {
	g := goldentest.LoadCases(t, "testdata/onnx.golden.json")
	defer g.Write(t)
	for _, c := range onnxCases() {
		t.Run(c.name, func(t *testing.T) {
			data := c.data()
			info, fs, err := ScanONNX(context.Background(), bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			want := append([]string(nil), c.want...)
			sort.Strings(want)
			if got := idSet(fs); !slices.Equal(got, want) {
				t.Errorf("IDs %v, want %v\n%s", got, want, dump(fs))
			}
			if !strings.HasPrefix(c.name, "overrun") && !LooksONNX(data) {
				t.Error("LooksONNX = false")
			}
			g.Check(t, c.name, onnxGolden{info, fs})
		})
	}
}

func TestScanONNXInfo(t *testing.T) {
	data := model(graph([][]byte{node("Relu", ""), node("Add", "")}, [][]byte{rawTensor("w", 16), extTensor("v", "v.bin")}))
	info, fs, err := ScanONNX(context.Background(), bytes.NewReader(data), int64(len(data)))
	if err != nil || len(fs) != 0 {
		t.Fatalf("err %v findings %v", err, fs)
	}
	if info.IRVersion != 8 || info.ProducerName != "pytorch" || info.Nodes != 2 || info.Tensors != 2 ||
		len(info.ExternalData) != 1 || info.ExternalData[0].Location != "v.bin" || len(info.Opsets) != 1 || info.Opsets[0].Version != 17 {
		t.Errorf("info %+v", info)
	}
}

func TestLooksONNX(t *testing.T) {
	if LooksONNX([]byte("PK\x03\x04")) || LooksONNX([]byte{0x08, 0x00, 0x12}) || !LooksONNX(model(graph(nil, nil))) {
		t.Error("LooksONNX misclassifies")
	}
}
