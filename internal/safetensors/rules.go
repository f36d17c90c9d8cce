package safetensors

import (
	_ "embed"
	"fmt"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/llmfence/llmfence/internal/verdict"
)

var (
	//go:embed findings.yaml
	stYAML []byte
	//go:embed keras.yaml
	kerasYAML []byte
	//go:embed onnx.yaml
	onnxYAML []byte
	//go:embed rules.yaml
	rulesYAML []byte
)

func mustCatalogue(data []byte, prefix string) *verdict.Catalogue {
	c, err := verdict.LoadCatalogue(data, prefix)
	if err != nil {
		panic(fmt.Sprintf("safetensors: embedded catalogue %s: %v", prefix, err))
	}
	return c
}

// Catalogues are loaded once and never modified.
var (
	stCat    = sync.OnceValue(func() *verdict.Catalogue { return mustCatalogue(stYAML, "ST-") })
	kerasCat = sync.OnceValue(func() *verdict.Catalogue { return mustCatalogue(kerasYAML, "KERAS-") })
	onnxCat  = sync.OnceValue(func() *verdict.Catalogue { return mustCatalogue(onnxYAML, "ONNX-") })
)

// Catalogue returns the safetensors findings catalogue (prefix ST-).
func Catalogue() *verdict.Catalogue { return stCat() }

// KerasCatalogue returns the Keras findings catalogue (prefix KERAS-).
func KerasCatalogue() *verdict.Catalogue { return kerasCat() }

// ONNXCatalogue returns the ONNX findings catalogue (prefix ONNX-).
func ONNXCatalogue() *verdict.Catalogue { return onnxCat() }

// ruleSet is the parsed rules.yaml.
type ruleSet struct {
	Version                 int            `yaml:"version"`
	DTypes                  map[string]int `yaml:"dtypes"`
	KerasModules            []string       `yaml:"keras_modules"`
	KerasDangerousModules   []string       `yaml:"keras_dangerous_modules"`
	KerasDangerousCallables []string       `yaml:"keras_dangerous_callables"`
	ONNXDomains             []string       `yaml:"onnx_domains"`
}

var rules = sync.OnceValue(func() *ruleSet {
	var r ruleSet
	if err := yaml.Unmarshal(rulesYAML, &r); err != nil || r.Version < 1 || len(r.DTypes) == 0 {
		panic(fmt.Sprintf("safetensors: embedded rules.yaml: %v", err))
	}
	return &r
})

// findings collects findings, capping repeats of one ID.
type findings struct {
	cat  *verdict.Catalogue
	list []verdict.Finding
	seen map[string]int
}

const maxSameFinding = 20

func (f *findings) add(id, detail string, off int64) {
	if f.seen == nil {
		f.seen = map[string]int{}
	}
	f.seen[id]++
	switch n := f.seen[id]; {
	case n == maxSameFinding+1:
		f.list = append(f.list, f.cat.New(id, "further findings of this kind not listed", -1))
	case n <= maxSameFinding:
		f.list = append(f.list, f.cat.New(id, detail, off))
	}
}
