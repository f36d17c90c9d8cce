package vulndb

import (
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/llmfence/llmfence/internal/datafile"
)

//go:embed products.yaml
var productsYAML []byte

// PackageEntry maps OSV packages to one llmfence product.
type PackageEntry struct {
	Product   string   `yaml:"product"`
	Ecosystem string   `yaml:"ecosystem"`
	Names     []string `yaml:"names"`
	Ordering  Ordering `yaml:"ordering"`
	Source    string   `yaml:"source"`
}

// Products maps OSV packages to llmfence products. It is immutable after
// it is loaded.
type Products struct {
	version int
	entries []PackageEntry
	byKey   map[string]int // ecosystem "\x00" normalised name -> entry
}

// productFile is products.yaml as written.
type productFile struct {
	Version  int            `yaml:"version"`
	Packages []PackageEntry `yaml:"packages"`
}

func parseProducts(b []byte) (*Products, error) {
	var p *Products
	_, err := datafile.Decode("internal/vulndb/products.yaml", b, func(f *productFile) error {
		var err error
		p, err = f.products()
		return err
	})
	return p, err
}

func (f *productFile) products() (*Products, error) {
	p := &Products{version: f.Version, entries: f.Packages, byKey: map[string]int{}}
	var errs []error
	for i, e := range f.Packages {
		if e.Product == "" || e.Ecosystem == "" || len(e.Names) == 0 || e.Source == "" {
			errs = append(errs, fmt.Errorf("product map entry %d: product, ecosystem, names and source are required", i))
		}
		switch e.Ordering {
		case OrderSemver, OrderPyPI, OrderBuild:
		default:
			errs = append(errs, fmt.Errorf("product map entry %q: ordering %q is not semver, pypi or build", e.Product, e.Ordering))
		}
		for _, n := range e.Names {
			k := key(e.Ecosystem, n)
			if _, dup := p.byKey[k]; dup {
				errs = append(errs, fmt.Errorf("product map: %s %s listed twice", e.Ecosystem, n))
			}
			p.byKey[k] = i
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

var pep503 = regexp.MustCompile(`[-_.]+`)

// key normalises an ecosystem and package name for lookup: the ecosystem
// without its ":release" suffix ("Debian:12"), names in lower case, PyPI
// names after PEP 503, repository URLs without a trailing ".git" or "/".
func key(ecosystem, name string) string {
	eco := strings.ToLower(strings.TrimSpace(ecosystem))
	if i := strings.IndexByte(eco, ':'); i >= 0 {
		eco = eco[:i]
	}
	n := strings.ToLower(strings.TrimSpace(name))
	switch eco {
	case "pypi":
		n = pep503.ReplaceAllString(n, "-")
	case "git":
		n = strings.TrimSuffix(strings.TrimSuffix(n, "/"), ".git")
	}
	return eco + "\x00" + n
}

// Lookup returns the product entry for an OSV package.
func (p *Products) Lookup(pkg *Package) (PackageEntry, bool) {
	if pkg == nil {
		return PackageEntry{}, false
	}
	i, ok := p.byKey[key(pkg.Ecosystem, pkg.Name)]
	if !ok {
		return PackageEntry{}, false
	}
	return p.entries[i], true
}

// Entries returns the product map.
func (p *Products) Entries() []PackageEntry { return append([]PackageEntry(nil), p.entries...) }

// relevant reports whether any affected package of r is a known product.
func (p *Products) relevant(r *Record) bool {
	for _, a := range r.Affected {
		if _, ok := p.Lookup(a.Package); ok {
			return true
		}
	}
	return false
}
