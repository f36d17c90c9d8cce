package inspect

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// modelFormats are the formats whose files are components of type
// machine-learning-model in the BOM; everything else is a file.
var modelFormats = map[string]bool{
	FormatGGUF: true, FormatSafetensors: true, FormatPickle: true,
	FormatPyTorchZip: true, FormatPyTorchTar: true, FormatKeras: true, FormatKerasJSON: true,
	FormatNPZ: true, FormatNPY: true, FormatONNX: true, FormatOllama: true,
}

// BOMOptions describe the BOM's own metadata.
type BOMOptions struct {
	ToolVersion string
	// Now stamps the BOM; zero omits the timestamp (reproducible output).
	Now time.Time
}

// WriteBOM writes a CycloneDX 1.6 JSON BOM with one component per result:
// type machine-learning-model for model files (with a model card when the
// architecture is known), file otherwise; the SHA-256 as a hash; format,
// verdict and findings as llmfence:* properties.
func WriteBOM(w io.Writer, results []*Result, opts BOMOptions) error {
	bom := cdx.NewBOM()
	bom.SpecVersion = cdx.SpecVersion1_6
	md := &cdx.Metadata{
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "llmfence", Version: opts.ToolVersion,
		}}},
	}
	if !opts.Now.IsZero() {
		md.Timestamp = opts.Now.UTC().Format(time.RFC3339)
	}
	bom.Metadata = md
	comps := make([]cdx.Component, 0, len(results))
	for i, r := range results {
		comps = append(comps, component(i, r))
	}
	bom.Components = &comps
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return fmt.Errorf("writing the BOM: %w", err)
	}
	return nil
}

func component(i int, r *Result) cdx.Component {
	c := cdx.Component{
		BOMRef: fmt.Sprintf("file-%d", i+1),
		Type:   cdx.ComponentTypeFile,
		Name:   r.Path,
	}
	if modelFormats[r.Format] {
		c.Type = cdx.ComponentTypeMachineLearningModel
	}
	if r.Format == FormatOllama && r.Model != nil && r.Model.Name != "" {
		c.Name = r.Model.Name // the model, not its manifest's path
	}
	if r.SHA256 != "" {
		c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: r.SHA256}}
	}
	props := []cdx.Property{
		{Name: "llmfence:path", Value: r.Path},
		{Name: "llmfence:format", Value: r.Format},
		{Name: "llmfence:size", Value: strconv.FormatInt(r.Size, 10)},
		{Name: "llmfence:verdict", Value: string(r.Verdict)},
	}
	if r.Error != "" {
		props = append(props, cdx.Property{Name: "llmfence:error", Value: r.Error})
	}
	ids := map[string]bool{}
	for _, f := range r.Findings {
		ids[f.ID] = true
	}
	if len(ids) > 0 {
		list := make([]string, 0, len(ids))
		for id := range ids {
			list = append(list, id)
		}
		sort.Strings(list)
		props = append(props, cdx.Property{Name: "llmfence:findings", Value: strings.Join(list, ",")})
		props = append(props, cdx.Property{Name: "llmfence:max_severity", Value: string(r.MaxSeverity())})
	}
	if m := r.Model; m != nil {
		if m.Name != "" && m.Name != r.Path {
			c.Description = m.Name
		}
		if m.Parameters > 0 {
			props = append(props, cdx.Property{Name: "llmfence:model:parameters", Value: strconv.FormatUint(m.Parameters, 10)})
		}
		if m.Quantization != "" {
			props = append(props, cdx.Property{Name: "llmfence:model:quantization", Value: m.Quantization})
		}
		if m.ContextLength > 0 {
			props = append(props, cdx.Property{Name: "llmfence:model:context_length", Value: strconv.FormatUint(m.ContextLength, 10)})
		}
		if m.BaseModel != "" {
			props = append(props, cdx.Property{Name: "llmfence:model:base_model", Value: m.BaseModel})
		}
		if m.License != "" {
			c.Licenses = &cdx.Licenses{{License: &cdx.License{Name: m.License}}}
		}
		if m.Architecture != "" && c.Type == cdx.ComponentTypeMachineLearningModel {
			c.ModelCard = &cdx.MLModelCard{
				BOMRef: c.BOMRef + "-card",
				ModelParameters: &cdx.MLModelParameters{
					Task:               "text-generation",
					ArchitectureFamily: m.Architecture,
					ModelArchitecture:  modelArchitecture(m),
				},
			}
		}
	}
	c.Properties = &props
	return c
}

// modelArchitecture is a short description such as "llama 1.2B Q4_K_M".
func modelArchitecture(m *ModelInfo) string {
	parts := []string{m.Architecture}
	if m.Parameters > 0 {
		parts = append(parts, humanParams(m.Parameters))
	}
	if m.Quantization != "" {
		parts = append(parts, m.Quantization)
	}
	return strings.Join(parts, " ")
}

func humanParams(n uint64) string {
	switch {
	case n >= 1e9:
		return strconv.FormatFloat(float64(n)/1e9, 'f', 1, 64) + "B"
	case n >= 1e6:
		return strconv.FormatFloat(float64(n)/1e6, 'f', 1, 64) + "M"
	case n >= 1e3:
		return strconv.FormatFloat(float64(n)/1e3, 'f', 1, 64) + "K"
	}
	return strconv.FormatUint(n, 10)
}
