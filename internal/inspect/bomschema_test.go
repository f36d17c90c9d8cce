package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestBOMSchema validates the BOM of a real inspection (a model, a
// malicious pickle, a file in no known format, one that cannot be read)
// against the official CycloneDX 1.6 JSON schema, vendored in
// testdata/cyclonedx; the not-inspected verdict is stated in it.
func TestBOMSchema(t *testing.T) {
	c := jsonschema.NewCompiler()
	dir := "testdata/cyclonedx"
	for _, name := range []string{"bom-1.6.SNAPSHOT.schema.json", "spdx.SNAPSHOT.schema.json", "jsf-0.82.SNAPSHOT.schema.json"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		// Each schema is known by its $id; the BOM schema refers to the
		// others by their file names.
		for _, id := range []string{"http://cyclonedx.org/schema/" + strings.Replace(name, ".SNAPSHOT", "", 1), "http://cyclonedx.org/schema/" + name} {
			if strings.HasPrefix(name, "bom-") && strings.Contains(id, "SNAPSHOT") {
				continue
			}
			if err := c.AddResource(id, doc); err != nil {
				t.Fatal(err)
			}
		}
	}
	schema, err := c.Compile("http://cyclonedx.org/schema/bom-1.6.schema.json")
	if err != nil {
		t.Fatal(err)
	}

	files := t.TempDir()
	writeFile(t, files, "tiny.gguf", tinyGGUF(t))
	writeFile(t, files, "model.pkl", pickleOSSystem)
	writeFile(t, files, "blob.dat", randomBytes(4096, 9))
	in := newTestInspector(t, nil, nil)
	var results []*Result
	if _, err := in.Inspect(context.Background(), []string{files, filepath.Join(files, "missing.bin")}, func(r *Result) error {
		results = append(results, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteBOM(&buf, results, BOMOptions{ToolVersion: "test", Now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(inst); err != nil {
		t.Fatalf("the BOM does not validate against CycloneDX 1.6: %v\n%s", err, buf.String())
	}
	var bom struct {
		Components []struct {
			Name       string `json:"name"`
			Properties []struct{ Name, Value string }
		} `json:"components"`
	}
	if err := json.Unmarshal(buf.Bytes(), &bom); err != nil {
		t.Fatal(err)
	}
	verdicts := map[string]string{}
	for _, c := range bom.Components {
		for _, p := range c.Properties {
			if p.Name == "llmfence:verdict" {
				verdicts[filepath.Base(c.Name)] = p.Value
			}
		}
	}
	for name, want := range map[string]string{"blob.dat": "not-inspected", "missing.bin": "not-inspected", "model.pkl": "malicious", "tiny.gguf": "clean"} {
		if verdicts[name] != want {
			t.Errorf("%s: BOM verdict %q, want %q (%v)", name, verdicts[name], want, verdicts)
		}
	}
}
