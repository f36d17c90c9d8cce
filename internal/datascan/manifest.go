package datascan

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// ManifestOptions describe the manifest's own metadata.
type ManifestOptions struct {
	ToolVersion string
	// Now stamps the BOM; zero omits the timestamp (reproducible output).
	Now time.Time
}

// WriteManifest writes a CycloneDX 1.6 JSON BOM with one component of
// type data per file scanned: its SHA-256, size, format, schema, record
// count, the licences and sources the data declares, and its finding
// counts (as llmfence:* properties), so that an ML-BOM of a model can name
// the data it was trained on.
func WriteManifest(w io.Writer, files []FileInfo, opts ManifestOptions) error {
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
	comps := make([]cdx.Component, 0, len(files))
	for i, f := range files {
		comps = append(comps, dataComponent(i, f))
	}
	bom.Components = &comps
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return fmt.Errorf("writing the manifest: %w", err)
	}
	return nil
}

func dataComponent(i int, f FileInfo) cdx.Component {
	c := cdx.Component{
		BOMRef: fmt.Sprintf("data-%d", i+1),
		Type:   cdx.ComponentTypeData,
		Name:   f.Path,
		Data: &[]cdx.ComponentData{{
			BOMRef:   fmt.Sprintf("data-%d-content", i+1),
			Type:     cdx.ComponentDataTypeDataset,
			Name:     f.Path,
			Contents: &cdx.ComponentDataContents{Properties: &[]cdx.Property{{Name: "llmfence:records", Value: strconv.FormatInt(f.Records, 10)}}},
		}},
	}
	if f.SHA256 != "" {
		c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: f.SHA256}}
	}
	if len(f.Licenses) > 0 {
		ls := cdx.Licenses{}
		for _, l := range f.Licenses {
			ls = append(ls, cdx.LicenseChoice{License: &cdx.License{Name: l}})
		}
		c.Licenses = &ls
	}
	if len(f.Sources) > 0 {
		refs := []cdx.ExternalReference{}
		for _, s := range f.Sources {
			refs = append(refs, cdx.ExternalReference{Type: cdx.ERTypeDistribution, URL: s})
		}
		c.ExternalReferences = &refs
	}
	props := []cdx.Property{
		{Name: "llmfence:path", Value: f.Path},
		{Name: "llmfence:format", Value: f.Format},
		{Name: "llmfence:size", Value: strconv.FormatInt(f.Size, 10)},
		{Name: "llmfence:records", Value: strconv.FormatInt(f.Records, 10)},
	}
	if f.Schema != "" {
		props = append(props, cdx.Property{Name: "llmfence:schema", Value: f.Schema})
	}
	if f.Error != "" {
		props = append(props, cdx.Property{Name: "llmfence:error", Value: f.Error})
	}
	kinds := make([]string, 0, len(f.Findings))
	for k := range f.Findings {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		props = append(props, cdx.Property{Name: "llmfence:findings:" + k, Value: strconv.Itoa(f.Findings[k])})
	}
	if len(f.Categories) > 0 {
		cats := make([]string, 0, len(f.Categories))
		for k, n := range f.Categories {
			cats = append(cats, k+"="+strconv.Itoa(n))
		}
		sort.Strings(cats)
		props = append(props, cdx.Property{Name: "llmfence:pii_secret_matches", Value: strings.Join(cats, ",")})
	}
	c.Properties = &props
	return c
}
