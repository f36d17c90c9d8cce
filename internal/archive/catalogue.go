package archive

import (
	_ "embed"
	"sync"

	"github.com/llmfence/llmfence/internal/verdict"
)

//go:embed findings.yaml
var findingsYAML []byte

// loadCatalogue loads the catalogue once; it is never modified afterwards.
var loadCatalogue = sync.OnceValues(func() (*verdict.Catalogue, error) {
	return verdict.LoadCatalogue("internal/archive/findings.yaml", findingsYAML, "ARC-")
})

// Catalogue returns the findings catalogue of this package (prefix ARC-).
func Catalogue() (*verdict.Catalogue, error) { return loadCatalogue() }
