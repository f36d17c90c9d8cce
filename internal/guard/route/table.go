package route

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/llmfence/llmfence/internal/guard/meter"
)

//go:embed routes.yaml
var routesYAML []byte

// Class is what a route lets a client do. The zero value is Denied.
type Class int

const (
	Denied    Class = iota // not reachable through the gateway
	Listing                // read-only information; any valid key
	Inference              // metered model work; any valid key
	Admin                  // model management and engine control; admin key only
)

// String returns the class name used in routes.yaml.
func (c Class) String() string {
	switch c {
	case Listing:
		return "listing"
	case Inference:
		return "inference"
	case Admin:
		return "admin"
	}
	return "denied"
}

// ParseClass reads a class name as written in routes.yaml.
func ParseClass(s string) (Class, bool) {
	switch s {
	case "listing":
		return Listing, true
	case "inference":
		return Inference, true
	case "admin":
		return Admin, true
	case "denied":
		return Denied, true
	}
	return Denied, false
}

// File is the parsed route table file.
type File struct {
	Version int                  `yaml:"version"`
	Kinds   map[string]*KindSpec `yaml:"kinds"`
}

// KindSpec is the route list of one upstream kind as written in the file.
type KindSpec struct {
	Description string      `yaml:"description"`
	HeadAsGet   bool        `yaml:"head_as_get"`
	AdminFrom   []string    `yaml:"admin_from"`
	Routes      []RouteSpec `yaml:"routes"`
	Omitted     []Omission  `yaml:"omitted"`
}

// RouteSpec is one route entry.
type RouteSpec struct {
	ID      string   `yaml:"id"`
	Class   string   `yaml:"class"`
	Methods []string `yaml:"methods"`
	Path    string   `yaml:"path"`
	Source  string   `yaml:"source"`
	Note    string   `yaml:"note"`
	// Example is a concrete path that must match this route; tests use it.
	Example string `yaml:"example"`
	// Meter names how an inference route is metered (a meter ID of
	// package meter, or "none" for a route the meter cannot bill);
	// required for inference routes, refused on others.
	Meter string `yaml:"meter"`
	// ModelParam names the path parameter (without its ':') holding a
	// model name, to which the key's model globs apply.
	ModelParam string `yaml:"model_param"`
	// ModelList marks a listing route whose answer lists models:
	// "filtered" (the models a key may not use are removed when
	// filter_model_list is on) or "always" (removed for every key limited
	// to some models: the list shows what runs now, other users' work).
	ModelList string `yaml:"model_list"`
}

// ModelList values.
const (
	ModelListFiltered = "filtered"
	ModelListAlways   = "always"
)

// MeterNone marks an inference route the meter cannot bill.
const MeterNone = "none"

// Omission documents an upstream route left out on purpose.
type Omission struct {
	Path   string `yaml:"path"`
	Reason string `yaml:"reason"`
}

// Route is one compiled route of a Table.
type Route struct {
	ID        string
	Class     Class
	Methods   []string // as listed; HEAD added for GET routes when the kind says so
	Pattern   string
	Source    string
	Example   string
	Meter     string // see RouteSpec.Meter
	ModelList string // see RouteSpec.ModelList
	// modelSeg is the index of the model_param segment, -1 without one.
	modelSeg int

	segs []string
}

// Table is the compiled route list of one upstream kind. It is immutable and
// safe for concurrent use.
type Table struct {
	Kind      string
	Version   int
	HeadAsGet bool
	Routes    []Route
}

// LoadFile parses and validates the embedded route table file.
func LoadFile() (*File, error) { return ParseFile(routesYAML) }

// ParseFile parses and validates a route table file.
func ParseFile(data []byte) (*File, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("reading route table: %w", err)
	}
	if f.Version < 1 {
		return nil, errors.New("route table: version missing")
	}
	if len(f.Kinds) == 0 {
		return nil, errors.New("route table: no kinds")
	}
	for _, name := range f.KindNames() {
		if _, err := f.Table(name); err != nil {
			return nil, err
		}
	}
	return &f, nil
}

// KindNames lists the kinds in the file, sorted.
func (f *File) KindNames() []string {
	names := make([]string, 0, len(f.Kinds))
	for k := range f.Kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Kinds lists the upstream kinds the embedded table knows (nil if the
// embedded file were broken; the package tests make sure it is not).
func Kinds() []string {
	f, err := LoadFile()
	if err != nil {
		return nil
	}
	return f.KindNames()
}

// New returns the compiled route table for one upstream kind ("ollama",
// "vllm", "llamacpp" or "openai" for a generic OpenAI-compatible server).
func New(kind string) (*Table, error) {
	f, err := LoadFile()
	if err != nil {
		return nil, err
	}
	return f.Table(kind)
}

// Table compiles and validates the routes of one kind.
func (f *File) Table(kind string) (*Table, error) {
	spec, ok := f.Kinds[kind]
	if !ok || spec == nil {
		return nil, fmt.Errorf("unknown upstream kind %q (known: %s)", kind, strings.Join(f.KindNames(), ", "))
	}
	t := &Table{Kind: kind, Version: f.Version, HeadAsGet: spec.HeadAsGet}
	seen := map[string]bool{}
	add := func(rs RouteSpec, from string) error {
		r, err := compileRoute(rs, spec.HeadAsGet)
		if err != nil {
			return fmt.Errorf("route table, kind %s%s: %w", kind, from, err)
		}
		if seen[r.ID] {
			return fmt.Errorf("route table, kind %s: duplicate route id %q", kind, r.ID)
		}
		seen[r.ID] = true
		t.Routes = append(t.Routes, r)
		return nil
	}
	for _, rs := range spec.Routes {
		if err := add(rs, ""); err != nil {
			return nil, err
		}
	}
	for _, other := range spec.AdminFrom {
		src, ok := f.Kinds[other]
		if !ok || src == nil || other == kind {
			return nil, fmt.Errorf("route table, kind %s: admin_from names unknown kind %q", kind, other)
		}
		for _, rs := range src.Routes {
			if rs.Class != "admin" {
				continue
			}
			if seen[rs.ID] || t.coversAdmin(rs) {
				continue // the same admin route is already in the table
			}
			if err := add(rs, " (from "+other+")"); err != nil {
				return nil, err
			}
		}
	}
	if err := t.checkOverlaps(); err != nil {
		return nil, fmt.Errorf("route table, kind %s: %w", kind, err)
	}
	return t, nil
}

// coversAdmin reports whether the table already has admin routes with the
// same pattern for every method of rs (vLLM and llama.cpp share /metrics,
// /tokenize, /detokenize).
func (t *Table) coversAdmin(rs RouteSpec) bool {
	for _, m := range rs.Methods {
		covered := false
		for i := range t.Routes {
			r := &t.Routes[i]
			if r.Class == Admin && r.Pattern == rs.Path && r.allows(m) {
				covered = true
				break
			}
		}
		if !covered {
			return false
		}
	}
	return true
}

var knownMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete,
}

func compileRoute(rs RouteSpec, headAsGet bool) (Route, error) {
	if rs.ID == "" {
		return Route{}, fmt.Errorf("route %q has no id", rs.Path)
	}
	cls, ok := ParseClass(rs.Class)
	if !ok || cls == Denied {
		return Route{}, fmt.Errorf("route %s: class %q is not listing, inference or admin", rs.ID, rs.Class)
	}
	if rs.Source == "" {
		return Route{}, fmt.Errorf("route %s: no source cited", rs.ID)
	}
	if len(rs.Methods) == 0 {
		return Route{}, fmt.Errorf("route %s: no methods", rs.ID)
	}
	methods := make([]string, 0, len(rs.Methods)+1)
	for _, m := range rs.Methods {
		if !slices.Contains(knownMethods, m) {
			return Route{}, fmt.Errorf("route %s: method %q not allowed in the table", rs.ID, m)
		}
		if !slices.Contains(methods, m) {
			methods = append(methods, m)
		}
	}
	if headAsGet && slices.Contains(methods, http.MethodGet) && !slices.Contains(methods, http.MethodHead) {
		methods = append(methods, http.MethodHead)
	}
	segs, err := compilePattern(rs.Path)
	if err != nil {
		return Route{}, fmt.Errorf("route %s: %w", rs.ID, err)
	}
	if rs.Example == "" {
		return Route{}, fmt.Errorf("route %s: no example path", rs.ID)
	}
	switch {
	case cls == Inference && rs.Meter == "":
		return Route{}, fmt.Errorf("route %s: an inference route must name its meter (or %q)", rs.ID, MeterNone)
	case cls == Inference && rs.Meter != MeterNone:
		if _, _, ok := meter.Lookup(rs.Meter); !ok {
			return Route{}, fmt.Errorf("route %s: unknown meter %q (known: %s, %s)", rs.ID, rs.Meter, strings.Join(meter.MeterIDs(), ", "), MeterNone)
		}
	case cls != Inference && rs.Meter != "":
		return Route{}, fmt.Errorf("route %s: only inference routes are metered", rs.ID)
	}
	switch rs.ModelList {
	case "":
	case ModelListFiltered, ModelListAlways:
		if cls != Listing {
			return Route{}, fmt.Errorf("route %s: model_list is for listing routes", rs.ID)
		}
	default:
		return Route{}, fmt.Errorf("route %s: model_list %q: want %s or %s", rs.ID, rs.ModelList, ModelListFiltered, ModelListAlways)
	}
	modelSeg := -1
	if rs.ModelParam != "" {
		modelSeg = slices.Index(segs, ":"+rs.ModelParam)
		if modelSeg < 0 {
			return Route{}, fmt.Errorf("route %s: model_param %q is not a parameter of %q", rs.ID, rs.ModelParam, rs.Path)
		}
	}
	r := Route{ID: rs.ID, Class: cls, Methods: methods, Pattern: rs.Path, Source: rs.Source, Example: rs.Example,
		Meter: rs.Meter, ModelList: rs.ModelList, modelSeg: modelSeg, segs: segs}
	ex, err := Normalize(rs.Example)
	if err != nil || ex != rs.Example || !r.matches(splitPath(ex), false) {
		return Route{}, fmt.Errorf("route %s: example %q does not match pattern %q", rs.ID, rs.Example, rs.Path)
	}
	return r, nil
}

// compilePattern checks a pattern is already in normalised form and splits it.
func compilePattern(p string) ([]string, error) {
	n, err := Normalize(p)
	if err != nil || n != p {
		return nil, fmt.Errorf("pattern %q is not a normalised path", p)
	}
	segs := splitPath(p)
	for i, s := range segs {
		switch {
		case s[0] == ':':
			if len(s) == 1 {
				return nil, fmt.Errorf("pattern %q: unnamed parameter", p)
			}
		case s[0] == '*':
			if len(s) == 1 || i != len(segs)-1 {
				return nil, fmt.Errorf("pattern %q: catch-all must be named and last", p)
			}
		case strings.ToLower(s) != s:
			return nil, fmt.Errorf("pattern %q: literal segments must be lower case", p)
		}
	}
	return segs, nil
}

// splitPath splits a normalised path into its segments; "/" has none.
func splitPath(p string) []string {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// matches reports whether segs fits the route's pattern. With fold, literal
// segments compare without regard to case.
func (r *Route) matches(segs []string, fold bool) bool {
	for i, ps := range r.segs {
		if ps[0] == '*' {
			return len(segs) > i
		}
		if i >= len(segs) {
			return false
		}
		if ps[0] == ':' {
			continue
		}
		if segs[i] == ps || (fold && strings.EqualFold(segs[i], ps)) {
			continue
		}
		return false
	}
	return len(segs) == len(r.segs)
}

// allows reports whether the route accepts method.
func (r *Route) allows(method string) bool { return slices.Contains(r.Methods, method) }

// overlap reports whether some path could match both patterns, comparing
// literals without regard to case (so odd-case spellings stay unambiguous).
func overlap(a, b []string) bool {
	for i := 0; ; i++ {
		aEnd, bEnd := i >= len(a), i >= len(b)
		if aEnd || bEnd {
			return aEnd && bEnd
		}
		if a[i][0] == '*' || b[i][0] == '*' {
			return true
		}
		if a[i][0] == ':' || b[i][0] == ':' || strings.EqualFold(a[i], b[i]) {
			continue
		}
		return false
	}
}

// checkOverlaps refuses two routes that could both claim one request: same
// method and overlapping patterns. Different classes under one path are fine
// only when the methods differ.
func (t *Table) checkOverlaps() error {
	for i := range t.Routes {
		for j := i + 1; j < len(t.Routes); j++ {
			a, b := &t.Routes[i], &t.Routes[j]
			if !overlap(a.segs, b.segs) {
				continue
			}
			for _, m := range a.Methods {
				if b.allows(m) {
					return fmt.Errorf("routes %s and %s both claim %s on overlapping paths %q and %q", a.ID, b.ID, m, a.Pattern, b.Pattern)
				}
			}
		}
	}
	return nil
}

// Lookup returns the route for a normalised path and method, without any
// normalisation. It is the ground truth Decide is checked against.
func (t *Table) Lookup(method, normPath string) (*Route, bool) {
	segs := splitPath(normPath)
	for i := range t.Routes {
		r := &t.Routes[i]
		if r.matches(segs, false) && r.allows(method) {
			return r, true
		}
	}
	return nil, false
}

// Route returns the route with the given id.
func (t *Table) Route(id string) (*Route, bool) {
	for i := range t.Routes {
		if t.Routes[i].ID == id {
			return &t.Routes[i], true
		}
	}
	return nil, false
}
