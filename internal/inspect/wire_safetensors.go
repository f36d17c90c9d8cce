package inspect

import (
	"context"
	"io"
	"sort"

	"github.com/llmfence/llmfence/internal/safetensors"
	"github.com/llmfence/llmfence/internal/verdict"
)

// wireSafetensors adds the safetensors, ONNX and Keras parsers.
func wireSafetensors(p *Parsers) {
	p.Safetensors = stScanner{}
	p.ONNX = onnxScanner{}
	p.Keras = kerasChecker{}
}

// maxListedTensors bounds the tensor names listed in metadata.
const maxListedTensors = 50

type stScanner struct{}

func (stScanner) ScanFile(ctx context.Context, r io.ReaderAt, size int64) (Report, error) {
	h, fs, err := safetensors.Scan(ctx, r, size)
	if h == nil {
		return Report{Findings: fs}, err
	}
	dtypes := map[string]int{}
	names := []string{}
	for i, t := range h.Tensors {
		dtypes[t.DType]++
		if i < maxListedTensors {
			names = append(names, t.Name)
		}
	}
	meta := map[string]any{
		"header_size":  h.HeaderSize,
		"data_size":    h.DataSize,
		"tensor_count": len(h.Tensors),
		"dtypes":       dtypes,
		"parameters":   h.Params,
		"tensors":      names,
	}
	if len(h.Metadata) > 0 {
		meta["safetensors_metadata"] = h.Metadata
	}
	var model *ModelInfo
	if h.Params > 0 {
		model = &ModelInfo{Parameters: uint64(h.Params), Quantization: dominant(dtypes)}
	}
	return Report{Findings: fs, Metadata: meta, Model: model}, err
}

// dominant is the most common dtype (ties: alphabetical).
func dominant(counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	best := ""
	for _, k := range keys {
		if best == "" || counts[k] > counts[best] {
			best = k
		}
	}
	return best
}

type onnxScanner struct{}

func (onnxScanner) ScanFile(ctx context.Context, r io.ReaderAt, size int64) (Report, error) {
	info, fs, err := safetensors.ScanONNX(ctx, io.NewSectionReader(r, 0, size), size)
	if info == nil {
		return Report{Findings: fs}, err
	}
	rep := Report{Findings: fs, Metadata: map[string]any{"onnx": info}}
	for _, e := range info.ExternalData {
		rep.External = append(rep.External, e.Location)
	}
	return rep, err
}

type kerasChecker struct{}

func (kerasChecker) CheckKerasConfig(cfg []byte) ([]verdict.Finding, error) {
	return safetensors.ScanKerasConfig(cfg)
}

func (kerasChecker) LooksKerasConfig(cfg []byte) bool {
	return safetensors.LooksKerasConfig(cfg)
}
