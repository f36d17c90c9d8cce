package safetensors

import (
	_ "embed"
	"errors"
	"fmt"
	"sync"

	"github.com/llmfence/llmfence/internal/datafile"
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

// data is everything the package loads from its embedded files, once, on
// first use; it is never modified afterwards.
type data struct {
	st, keras, onnx *verdict.Catalogue
	rules           *ruleSet
}

var loadData = sync.OnceValues(func() (*data, error) {
	var d data
	var err error
	if d.st, err = verdict.LoadCatalogue("internal/safetensors/findings.yaml", stYAML, "ST-"); err != nil {
		return nil, err
	}
	if d.keras, err = verdict.LoadCatalogue("internal/safetensors/keras.yaml", kerasYAML, "KERAS-"); err != nil {
		return nil, err
	}
	if d.onnx, err = verdict.LoadCatalogue("internal/safetensors/onnx.yaml", onnxYAML, "ONNX-"); err != nil {
		return nil, err
	}
	if d.rules, err = datafile.Decode("internal/safetensors/rules.yaml", rulesYAML, (*ruleSet).check); err != nil {
		return nil, err
	}
	return &d, nil
})

// loaded returns the embedded data, or an error saying it did not load.
func loaded() (*data, error) {
	d, err := loadData()
	if err != nil {
		return nil, fmt.Errorf("loading the safetensors, Keras and ONNX checks: %w", err)
	}
	return d, nil
}

// Catalogue returns the safetensors findings catalogue (prefix ST-).
func Catalogue() (*verdict.Catalogue, error) {
	d, err := loaded()
	if err != nil {
		return nil, err
	}
	return d.st, nil
}

// KerasCatalogue returns the Keras findings catalogue (prefix KERAS-).
func KerasCatalogue() (*verdict.Catalogue, error) {
	d, err := loaded()
	if err != nil {
		return nil, err
	}
	return d.keras, nil
}

// ONNXCatalogue returns the ONNX findings catalogue (prefix ONNX-).
func ONNXCatalogue() (*verdict.Catalogue, error) {
	d, err := loaded()
	if err != nil {
		return nil, err
	}
	return d.onnx, nil
}

// ruleSet is the parsed rules.yaml.
type ruleSet struct {
	Version                 int            `yaml:"version"`
	DTypes                  map[string]int `yaml:"dtypes"`
	KerasModules            []string       `yaml:"keras_modules"`
	KerasDangerousModules   []string       `yaml:"keras_dangerous_modules"`
	KerasDangerousCallables []string       `yaml:"keras_dangerous_callables"`
	ONNXDomains             []string       `yaml:"onnx_domains"`
}

func (r *ruleSet) check() error {
	if len(r.DTypes) == 0 {
		return errors.New("no dtypes")
	}
	return nil
}

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
