package fingerprint

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/llmfence/llmfence/internal/datafile"
)

//go:embed fingerprints.yaml
var catalogYAML []byte

// Catalog is a parsed, validated fingerprint file.
type Catalog struct {
	Version  int       `yaml:"version"`
	Products []Product `yaml:"products"`
	Gateways []Gateway `yaml:"gateways"`
}

// Gateway is an authenticating front (an LLM gateway or a reverse proxy)
// recognised by the refusal it sends an anonymous client. Its rules are
// matched against responses the probe already holds, so recognising a
// gateway costs no request.
type Gateway struct {
	ID      string        `yaml:"id"`
	Name    string        `yaml:"name"`
	Sources []string      `yaml:"sources"`
	Rules   []GatewayRule `yaml:"rules"`
}

// GatewayRule recognises its gateway when every matcher holds on one
// response.
type GatewayRule struct {
	Name  string    `yaml:"name"`
	Match []Matcher `yaml:"match"`
}

// Product is one server stack the catalogue can recognise.
type Product struct {
	ID         string          `yaml:"id"`
	Name       string          `yaml:"name"`
	Priority   int             `yaml:"priority"`
	Ports      []int           `yaml:"ports"`
	Fallback   bool            `yaml:"fallback"`
	Sources    []string        `yaml:"sources"`
	Rules      []Rule          `yaml:"rules"`
	Version    []Extractor     `yaml:"version"`
	Auth       *AuthSpec       `yaml:"auth"`
	Management []ManagementChk `yaml:"management"`
	// Generate is the one benign generation Options.Active allows; nil
	// when the product has no generate route.
	Generate *GenerateSpec `yaml:"generate"`
}

// GenerateSpec is a product's benign generation: POST Path with Body, in
// which $model and $prompt are replaced by JSON strings; Reply is the JSON
// path of the generated text.
type GenerateSpec struct {
	Path  string `yaml:"path"`
	Body  string `yaml:"body"`
	Reply string `yaml:"reply"`
}

// request renders the generation request for model and prompt.
func (g *GenerateSpec) request(model, prompt string) Request {
	m, _ := json.Marshal(model)
	p, _ := json.Marshal(prompt)
	body := strings.NewReplacer("$model", string(m), "$prompt", string(p)).Replace(g.Body)
	return Request{Method: http.MethodPost, Path: g.Path, Body: body}
}

func (g *GenerateSpec) compile() error {
	if !strings.HasPrefix(g.Path, "/") {
		return fmt.Errorf("generate path %q must start with /", g.Path)
	}
	if g.Reply == "" {
		return errors.New("generate needs a reply path")
	}
	if !strings.Contains(g.Body, "$prompt") {
		return errors.New("generate body has no $prompt")
	}
	if r := g.request("m\"\u00e9", "p\n\"x"); !json.Valid([]byte(r.Body)) {
		return fmt.Errorf("generate body is not JSON once filled in: %s", r.Body)
	}
	return nil
}

// Rule identifies its product when every check holds.
type Rule struct {
	Name   string  `yaml:"name"`
	Checks []Check `yaml:"checks"`
}

// Check is one request and the matchers its response must satisfy.
type Check struct {
	Request Request   `yaml:"request"`
	Match   []Matcher `yaml:"match"`
}

// Request is a read-only HTTP request a fingerprint makes.
type Request struct {
	Method string `yaml:"method"`
	Path   string `yaml:"path"`
	// Body, if set, is sent as a JSON request body.
	Body string `yaml:"body"`
}

// Key identifies a request in the per-target response cache.
func (r Request) Key() string { return r.Method + " " + r.Path + " " + r.Body }

func (r Request) String() string { return r.Method + " " + r.Path }

// Matcher is one condition on a response. Exactly one of Status, Header,
// Body and JSON is set.
type Matcher struct {
	Status []int        `yaml:"status"`
	Header *HeaderMatch `yaml:"header"`
	Body   string       `yaml:"body"`
	JSON   *JSONMatch   `yaml:"json"`
	Not    bool         `yaml:"not"`

	bodyRE *regexp.Regexp
}

// HeaderMatch requires header Name to be present and match Regex.
type HeaderMatch struct {
	Name  string `yaml:"name"`
	Regex string `yaml:"regex"`

	re *regexp.Regexp
}

// JSONMatch requires the body to be JSON and Path to hold. With no condition
// set, the path must exist.
type JSONMatch struct {
	Path   string  `yaml:"path"`
	Exists *bool   `yaml:"exists"`
	Equals *string `yaml:"equals"`
	Regex  string  `yaml:"regex"`
	Type   string  `yaml:"type"`

	re *regexp.Regexp
}

// Extractor reads a value (a version) from one response.
type Extractor struct {
	Request Request `yaml:"request"`
	JSON    string  `yaml:"json"`
	Header  string  `yaml:"header"`
	Regex   string  `yaml:"regex"`

	re *regexp.Regexp
}

// AuthSpec names the request that shows whether the model API needs
// credentials, with optional explicit rules.
type AuthSpec struct {
	Request Request    `yaml:"request"`
	Rules   []AuthRule `yaml:"rules"`
}

// AuthRule sets Result ("none" or "required") when all matchers hold.
type AuthRule struct {
	Match  []Matcher `yaml:"match"`
	Result string    `yaml:"result"`
}

// ManagementChk marks model management as open when its matchers hold.
type ManagementChk struct {
	Request Request   `yaml:"request"`
	Match   []Matcher `yaml:"match"`
	Note    string    `yaml:"note"`
}

// loadEmbedded parses and validates the embedded fingerprint file once.
var loadEmbedded = sync.OnceValues(func() (*Catalog, error) {
	return ParseCatalog("internal/fingerprint/fingerprints.yaml", catalogYAML)
})

// LoadCatalog returns the embedded fingerprint catalogue, parsed and
// validated on first use. It is shared: treat it as read-only.
func LoadCatalog() (*Catalog, error) { return loadEmbedded() }

// ParseCatalog parses and validates the fingerprint file name (data).
func ParseCatalog(name string, data []byte) (*Catalog, error) {
	return datafile.Decode(name, data, (*Catalog).compile)
}

var validTypes = map[string]bool{"": true, "string": true, "number": true, "bool": true, "array": true, "object": true, "null": true}

func (c *Catalog) compile() error {
	if len(c.Products) == 0 {
		return errors.New("no products")
	}
	seen := map[string]bool{}
	for i := range c.Products {
		p := &c.Products[i]
		if p.ID == "" {
			return fmt.Errorf("product %d has no id", i)
		}
		if seen[p.ID] {
			return fmt.Errorf("product %q listed twice", p.ID)
		}
		seen[p.ID] = true
		if len(p.Sources) == 0 {
			return fmt.Errorf("product %q cites no upstream source", p.ID)
		}
		if len(p.Rules) == 0 {
			return fmt.Errorf("product %q has no rules", p.ID)
		}
		for j := range p.Rules {
			r := &p.Rules[j]
			if len(r.Checks) == 0 {
				return fmt.Errorf("product %q rule %q has no checks", p.ID, r.Name)
			}
			for k := range r.Checks {
				if err := compileRequest(&r.Checks[k].Request); err != nil {
					return fmt.Errorf("product %q rule %q: %w", p.ID, r.Name, err)
				}
				if len(r.Checks[k].Match) == 0 {
					return fmt.Errorf("product %q rule %q: check without matchers", p.ID, r.Name)
				}
				if err := compileMatchers(r.Checks[k].Match); err != nil {
					return fmt.Errorf("product %q rule %q: %w", p.ID, r.Name, err)
				}
			}
		}
		for j := range p.Version {
			e := &p.Version[j]
			if err := compileRequest(&e.Request); err != nil {
				return fmt.Errorf("product %q version: %w", p.ID, err)
			}
			n := 0
			for _, s := range []string{e.JSON, e.Header, e.Regex} {
				if s != "" {
					n++
				}
			}
			if n != 1 {
				return fmt.Errorf("product %q version extractor needs exactly one of json, header, regex", p.ID)
			}
			if e.Regex != "" {
				re, err := regexp.Compile(e.Regex)
				if err != nil {
					return fmt.Errorf("product %q version regex: %w", p.ID, err)
				}
				if re.NumSubexp() < 1 {
					return fmt.Errorf("product %q version regex needs a capture group", p.ID)
				}
				e.re = re
			}
		}
		if p.Auth != nil {
			if err := compileRequest(&p.Auth.Request); err != nil {
				return fmt.Errorf("product %q auth: %w", p.ID, err)
			}
			for _, ar := range p.Auth.Rules {
				if ar.Result != "none" && ar.Result != "required" {
					return fmt.Errorf("product %q auth rule result %q (want none or required)", p.ID, ar.Result)
				}
				if err := compileMatchers(ar.Match); err != nil {
					return fmt.Errorf("product %q auth: %w", p.ID, err)
				}
			}
		}
		if p.Generate != nil {
			if err := p.Generate.compile(); err != nil {
				return fmt.Errorf("product %q: %w", p.ID, err)
			}
		}
		for j := range p.Management {
			m := &p.Management[j]
			if err := compileRequest(&m.Request); err != nil {
				return fmt.Errorf("product %q management: %w", p.ID, err)
			}
			if m.Request.Method != http.MethodGet && m.Request.Method != http.MethodHead {
				return fmt.Errorf("product %q management check must be GET or HEAD", p.ID)
			}
			if len(m.Match) == 0 {
				return fmt.Errorf("product %q management check without matchers", p.ID)
			}
			if err := compileMatchers(m.Match); err != nil {
				return fmt.Errorf("product %q management: %w", p.ID, err)
			}
		}
	}
	return c.compileGateways()
}

func (c *Catalog) compileGateways() error {
	seen := map[string]bool{}
	for i := range c.Gateways {
		g := &c.Gateways[i]
		switch {
		case g.ID == "":
			return fmt.Errorf("gateway %d has no id", i)
		case seen[g.ID]:
			return fmt.Errorf("gateway %q listed twice", g.ID)
		case g.Name == "":
			return fmt.Errorf("gateway %q has no name", g.ID)
		case len(g.Sources) == 0:
			return fmt.Errorf("gateway %q cites no upstream source", g.ID)
		case len(g.Rules) == 0:
			return fmt.Errorf("gateway %q has no rules", g.ID)
		}
		seen[g.ID] = true
		for j := range g.Rules {
			r := &g.Rules[j]
			if len(r.Match) == 0 {
				return fmt.Errorf("gateway %q rule %q has no matchers", g.ID, r.Name)
			}
			if err := compileMatchers(r.Match); err != nil {
				return fmt.Errorf("gateway %q rule %q: %w", g.ID, r.Name, err)
			}
		}
	}
	return nil
}

// Gateway returns the gateway with this id.
func (c *Catalog) Gateway(id string) (*Gateway, bool) {
	for i := range c.Gateways {
		if c.Gateways[i].ID == id {
			return &c.Gateways[i], true
		}
	}
	return nil, false
}

func compileRequest(r *Request) error {
	r.Method = strings.ToUpper(strings.TrimSpace(r.Method))
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		if !readOnlyPOST(r.Path) {
			return fmt.Errorf("request %s is not a known read-only POST", r)
		}
	default:
		return fmt.Errorf("request method %q not allowed in fingerprints", r.Method)
	}
	if !strings.HasPrefix(r.Path, "/") {
		return fmt.Errorf("request path %q must start with /", r.Path)
	}
	return nil
}

func compileMatchers(ms []Matcher) error {
	for i := range ms {
		m := &ms[i]
		n := 0
		if len(m.Status) > 0 {
			n++
		}
		if m.Header != nil {
			n++
			if m.Header.Name == "" {
				return errors.New("header matcher without name")
			}
			re, err := regexp.Compile(m.Header.Regex)
			if err != nil {
				return fmt.Errorf("header regex: %w", err)
			}
			m.Header.re = re
		}
		if m.Body != "" {
			n++
			re, err := regexp.Compile(m.Body)
			if err != nil {
				return fmt.Errorf("body regex: %w", err)
			}
			m.bodyRE = re
		}
		if m.JSON != nil {
			n++
			if m.JSON.Path == "" {
				return errors.New("json matcher without path")
			}
			if !validTypes[m.JSON.Type] {
				return fmt.Errorf("json matcher type %q unknown", m.JSON.Type)
			}
			if m.JSON.Regex != "" {
				re, err := regexp.Compile(m.JSON.Regex)
				if err != nil {
					return fmt.Errorf("json regex: %w", err)
				}
				m.JSON.re = re
			}
		}
		if n != 1 {
			return fmt.Errorf("matcher %d needs exactly one of status, header, body, json (has %d)", i, n)
		}
	}
	return nil
}

// Product returns the product with this id.
func (c *Catalog) Product(id string) (*Product, bool) {
	for i := range c.Products {
		if c.Products[i].ID == id {
			return &c.Products[i], true
		}
	}
	return nil, false
}

// ordered returns the specific products in the order to try them for a
// target on port, then the fallback products.
func (c *Catalog) ordered(port uint16) (specific, fallback []*Product) {
	for i := range c.Products {
		p := &c.Products[i]
		if p.Fallback {
			fallback = append(fallback, p)
		} else {
			specific = append(specific, p)
		}
	}
	hint := func(p *Product) bool {
		for _, pt := range p.Ports {
			if pt == int(port) {
				return true
			}
		}
		return false
	}
	sort.SliceStable(specific, func(i, j int) bool {
		hi, hj := hint(specific[i]), hint(specific[j])
		if hi != hj {
			return hi
		}
		return specific[i].Priority > specific[j].Priority
	})
	sort.SliceStable(fallback, func(i, j int) bool { return fallback[i].Priority > fallback[j].Priority })
	return specific, fallback
}

// readOnlyPOST lists the POST routes the prober may call while passive:
// they read and change nothing.
func readOnlyPOST(path string) bool {
	return path == "/api/show"
}
