package inspect

import (
	_ "embed"
	"fmt"

	"github.com/llmfence/llmfence/internal/verdict"
)

//go:embed catalogue.yaml
var catalogueYAML []byte

// Catalogue returns the orchestrator's own findings catalogue (INS-).
func Catalogue() (*verdict.Catalogue, error) {
	c, err := verdict.LoadCatalogue(catalogueYAML, "INS-")
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	return c, nil
}
