package archive

import (
	_ "embed"
	"fmt"
	"sync"

	"github.com/llmfence/llmfence/internal/verdict"
)

//go:embed findings.yaml
var findingsYAML []byte

// catalogue is loaded once; it is never modified after loading.
var catalogue = sync.OnceValue(func() *verdict.Catalogue {
	c, err := verdict.LoadCatalogue(findingsYAML, "ARC-")
	if err != nil {
		// The catalogue is embedded and checked by the tests.
		panic(fmt.Sprintf("archive: embedded catalogue: %v", err))
	}
	return c
})

// Catalogue returns the findings catalogue of this package (prefix ARC-).
func Catalogue() *verdict.Catalogue { return catalogue() }
