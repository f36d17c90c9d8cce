package audit

import (
	_ "embed"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"

	"github.com/llmfence/llmfence/internal/datafile"
)

//go:embed runtimes.yaml
var runtimesYAML []byte

// Catalog is the audit's detection data (runtimes.yaml): which processes are
// which runtime, which of their settings to read and what they mean, and
// where model stores live.
type Catalog struct {
	Version int `yaml:"version"`
	// NetworkOnly lists findings catalogue IDs kept for a runtime only when
	// it listens beyond loopback.
	NetworkOnly []string      `yaml:"network_only_findings"`
	Runtimes    []RuntimeSpec `yaml:"runtimes"`
	Stores      []StoreSpec   `yaml:"stores"`

	byID    map[string]*RuntimeSpec
	storeBy map[string]*StoreSpec
}

// RuntimeSpec describes one runtime product.
type RuntimeSpec struct {
	ID                  string      `yaml:"id"`
	Name                string      `yaml:"name"`
	Match               []MatchRule `yaml:"match"`
	Helpers             []MatchRule `yaml:"helpers"`
	Settings            []Setting   `yaml:"settings"`
	EnvPrefixes         []string    `yaml:"env_prefixes"`
	DefaultBind         string      `yaml:"default_bind"`
	AuthByDefault       bool        `yaml:"auth_by_default"`
	OriginsAnyByDefault bool        `yaml:"origins_any_by_default"`
	GoModule            string      `yaml:"go_module"`
	VersionVar          string      `yaml:"version_var"`
	Stores              []string    `yaml:"stores"`
	Sources             []string    `yaml:"sources"`
}

// MatchRule recognises a process; every field it sets must hold.
type MatchRule struct {
	Programs     []string `yaml:"programs"`
	Subcommands  []string `yaml:"subcommands"`
	Module       string   `yaml:"module"`
	Arg          string   `yaml:"arg"`
	PathContains string   `yaml:"path_contains"`
}

// Setting is one setting the audit reads.
type Setting struct {
	Name    string   `yaml:"name"`
	From    string   `yaml:"from"` // env or flag
	Aliases []string `yaml:"aliases"`
	Role    string   `yaml:"role"`
	Bool    bool     `yaml:"bool"`
	Secret  bool     `yaml:"secret"`
	Syntax  string   `yaml:"syntax"`
	Store   string   `yaml:"store"`
	Suffix  string   `yaml:"suffix"`
}

// StoreSpec describes one kind of model store.
type StoreSpec struct {
	ID       string   `yaml:"id"`
	Runtime  string   `yaml:"runtime"`
	Layout   string   `yaml:"layout"`
	Home     []string `yaml:"home"`
	Relative []string `yaml:"relative"`
	ModelExt []string `yaml:"model_ext"`
	Sources  []string `yaml:"sources"`
}

// Setting roles (see runtimes.yaml).
const (
	roleBind      = "bind"
	roleBindHost  = "bind_host"
	rolePort      = "port"
	roleListenAll = "listen_all"
	rolePublic    = "public"
	roleOrigins   = "origins"
	roleAuth      = "auth"
	roleAuthOff   = "auth_off"
	roleModels    = "models"
	roleCloudOff  = "cloud_off"
)

var knownRoles = map[string]bool{"": true, roleBind: true, roleBindHost: true, rolePort: true,
	roleListenAll: true, rolePublic: true, roleOrigins: true, roleAuth: true, roleAuthOff: true,
	roleModels: true, roleCloudOff: true}

// Store layouts.
const (
	layoutOllama      = "ollama"
	layoutHuggingFace = "huggingface"
	layoutTree        = "tree"
	layoutFiles       = "files"
)

// loadEmbedded parses the embedded runtimes.yaml once, on first use.
var loadEmbedded = sync.OnceValues(func() (*Catalog, error) {
	return ParseCatalog("internal/audit/runtimes.yaml", runtimesYAML)
})

// LoadCatalog returns the embedded runtimes.yaml, parsed and validated. It
// is shared: treat it as read-only.
func LoadCatalog() (*Catalog, error) { return loadEmbedded() }

// ParseCatalog parses and validates the catalogue file name (data);
// unknown fields are refused.
func ParseCatalog(name string, data []byte) (*Catalog, error) {
	return datafile.Decode(name, data, (*Catalog).validate)
}

func (c *Catalog) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	c.byID = map[string]*RuntimeSpec{}
	c.storeBy = map[string]*StoreSpec{}
	for i := range c.Stores {
		s := &c.Stores[i]
		if s.ID == "" || c.storeBy[s.ID] != nil {
			bad("store %q: missing or duplicate id", s.ID)
		}
		c.storeBy[s.ID] = s
		switch s.Layout {
		case layoutOllama, layoutHuggingFace:
		case layoutTree, layoutFiles:
			if len(s.ModelExt) == 0 {
				bad("store %q: layout %s needs model_ext", s.ID, s.Layout)
			}
		default:
			bad("store %q: unknown layout %q", s.ID, s.Layout)
		}
		if s.Runtime == "" || len(s.Sources) == 0 {
			bad("store %q: runtime and sources are required", s.ID)
		}
		for _, p := range append(append([]string{}, s.Home...), s.Relative...) {
			if p == "" || path.IsAbs(p) || strings.Contains(p, "..") {
				bad("store %q: path %q must be relative and stay inside", s.ID, p)
			}
		}
	}
	for i := range c.Runtimes {
		r := &c.Runtimes[i]
		where := fmt.Sprintf("runtime %q", r.ID)
		if r.ID == "" || c.byID[r.ID] != nil {
			bad("%s: missing or duplicate id", where)
		}
		c.byID[r.ID] = r
		if r.Name == "" || len(r.Sources) == 0 || len(r.Match) == 0 {
			bad("%s: name, match and sources are required", where)
		}
		if _, _, err := parseBind(r.DefaultBind, "hostport"); r.DefaultBind == "" || err != nil {
			bad("%s: default_bind %q is not host:port", where, r.DefaultBind)
		}
		for _, m := range append(append([]MatchRule{}, r.Match...), r.Helpers...) {
			if len(m.Programs) == 0 && m.Module == "" && m.Arg == "" {
				bad("%s: a match rule needs programs, module or arg", where)
			}
			for _, g := range m.Programs {
				if _, err := path.Match(g, ""); err != nil {
					bad("%s: program glob %q: %v", where, g, err)
				}
			}
		}
		seen := map[string]bool{}
		for _, s := range r.Settings {
			if s.Name == "" || seen[s.From+" "+s.Name] {
				bad("%s: setting %q missing or duplicate", where, s.Name)
			}
			seen[s.From+" "+s.Name] = true
			switch s.From {
			case "env":
				if s.Bool || len(s.Aliases) > 0 {
					bad("%s: setting %s: bool and aliases are for flags", where, s.Name)
				}
			case "flag":
				if !strings.HasPrefix(s.Name, "-") {
					bad("%s: flag %q must start with -", where, s.Name)
				}
			default:
				bad("%s: setting %s: from must be env or flag", where, s.Name)
			}
			if !knownRoles[s.Role] {
				bad("%s: setting %s: unknown role %q", where, s.Name, s.Role)
			}
			switch {
			case s.Role == roleBind && s.Syntax != "ollama" && s.Syntax != "hostport":
				bad("%s: setting %s: bind syntax must be ollama or hostport", where, s.Name)
			case s.Role == roleOrigins && s.Syntax != "comma" && s.Syntax != "json":
				bad("%s: setting %s: origins syntax must be comma or json", where, s.Name)
			case s.Role != roleBind && s.Role != roleOrigins && s.Syntax != "":
				bad("%s: setting %s: syntax is only for bind and origins", where, s.Name)
			}
			if (s.Role == roleListenAll || s.Role == rolePublic) != s.Bool && s.Role != "" {
				bad("%s: setting %s: listen_all and public are bool flags, and bool flags need one of them or no role", where, s.Name)
			}
			if s.Role == roleModels {
				if c.storeBy[s.Store] == nil {
					bad("%s: setting %s: unknown store %q", where, s.Name, s.Store)
				}
			} else if s.Store != "" || s.Suffix != "" {
				bad("%s: setting %s: store and suffix are for role models", where, s.Name)
			}
		}
		for _, id := range r.Stores {
			if c.storeBy[id] == nil {
				bad("%s: unknown store %q", where, id)
			}
		}
		if (r.GoModule == "") != (r.VersionVar == "") {
			bad("%s: go_module and version_var go together", where)
		}
	}
	for _, s := range c.Stores {
		if s.Runtime != "huggingface" && c.byID[s.Runtime] == nil {
			bad("store %q: unknown runtime %q", s.ID, s.Runtime)
		}
	}
	return errors.Join(errs...)
}

// Runtime returns the spec of a runtime ID.
func (c *Catalog) Runtime(id string) (*RuntimeSpec, bool) {
	r, ok := c.byID[id]
	return r, ok
}

// Store returns the spec of a store kind.
func (c *Catalog) Store(id string) (*StoreSpec, bool) {
	s, ok := c.storeBy[id]
	return s, ok
}
