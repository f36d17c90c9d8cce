package inspect

import (
	_ "embed"
	"sync"

	"github.com/llmfence/llmfence/internal/verdict"
)

//go:embed catalogue.yaml
var catalogueYAML []byte

// loadCatalogue loads the catalogue once; it is never modified afterwards.
var loadCatalogue = sync.OnceValues(func() (*verdict.Catalogue, error) {
	return verdict.LoadCatalogue("internal/inspect/catalogue.yaml", catalogueYAML, "INS-")
})

// Catalogue returns the orchestrator's own findings catalogue (INS-).
func Catalogue() (*verdict.Catalogue, error) { return loadCatalogue() }
