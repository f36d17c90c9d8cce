package inspect

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/llmfence/llmfence/internal/goldentest"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/verdict"
)

func TestWriteBOM(t *testing.T) {
	results := []*Result{
		{Path: "m/tiny.gguf", Format: FormatGGUF, Size: 1000, SHA256: "aa", Verdict: verdict.Clean, Findings: []verdict.Finding{},
			Model: &ModelInfo{Name: "tiny", Architecture: "llama", Parameters: 1_500_000_000, Quantization: "Q4_K_M", ContextLength: 4096, License: "apache-2.0"}},
		{Path: "m/pytorch_model.bin", Format: FormatPyTorchZip, Size: 300, SHA256: "bb", Verdict: verdict.Malicious,
			Findings: []verdict.Finding{{ID: "PKL-001", Severity: service.SeverityCritical}, {ID: "INS-001", Severity: service.SeverityMedium}, {ID: "PKL-001", Severity: service.SeverityCritical}}},
		{Path: "m/README.md", Format: FormatUnknown, Size: 5, SHA256: "cc", Verdict: verdict.Clean, Findings: []verdict.Finding{{ID: "INS-002", Severity: service.SeverityInfo}}},
		{Path: "m/gone", Format: FormatUnknown, Error: "cannot open: no such file or directory"},
	}
	var buf bytes.Buffer
	if err := WriteBOM(&buf, results, BOMOptions{ToolVersion: "test", Now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(buf.Bytes()) {
		t.Fatal("invalid JSON")
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(buf.Bytes()), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_6 || len(*bom.Components) != len(results) {
		t.Fatalf("spec %v, %d components", bom.SpecVersion, len(*bom.Components))
	}
	comps := *bom.Components
	wantTypes := []cdx.ComponentType{cdx.ComponentTypeMachineLearningModel, cdx.ComponentTypeMachineLearningModel, cdx.ComponentTypeFile, cdx.ComponentTypeFile}
	for i, c := range comps {
		if c.Type != wantTypes[i] {
			t.Errorf("%s: type %s, want %s", c.Name, c.Type, wantTypes[i])
		}
	}
	if mc := comps[0].ModelCard; mc == nil || mc.ModelParameters.ArchitectureFamily != "llama" || mc.ModelParameters.ModelArchitecture != "llama 1.5B Q4_K_M" {
		t.Errorf("model card %+v", mc)
	}
	if comps[3].Hashes != nil {
		t.Error("a file that could not be read has no hash")
	}
	goldentest.Check(t, filepath.Join("testdata", "bom.golden.json"), buf.Bytes())
}
