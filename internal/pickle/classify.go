package pickle

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Class is how an imported callable is judged.
type Class int

const (
	Unknown   Class = iota // not on either list: suspicious
	Safe                   // on the allow-list of ordinary checkpoint imports
	Dangerous              // on the deny-list: can run code
)

func (c Class) String() string {
	switch c {
	case Safe:
		return "safe"
	case Dangerous:
		return "dangerous"
	}
	return "unknown"
}

// MarshalText makes Class render as its name in JSON.
func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

//go:embed lists.yaml
var listsYAML []byte

// ListEntry is one entry of the allow-list or deny-list.
type ListEntry struct {
	Name string `yaml:"name" json:"name"`
	Why  string `yaml:"why" json:"why"`
	// Overrides (allow-list only) names the deny-list entry above Name
	// that this exact name is excepted from; a safe name below a denied
	// module without it is refused as a likely mistake.
	Overrides string `yaml:"overrides,omitempty" json:"overrides,omitempty"`
}

// Lists are the embedded import lists.
type Lists struct {
	Version   int               `yaml:"version"`
	Compat    map[string]string `yaml:"compat"`
	Safe      []ListEntry       `yaml:"safe"`
	Dangerous []ListEntry       `yaml:"dangerous"`

	safe      map[string]string
	dangerous map[string]string
}

func parseLists(data []byte) (*Lists, error) {
	var l Lists
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("pickle import lists: %w", err)
	}
	if l.Version < 1 {
		return nil, fmt.Errorf("pickle import lists: missing version")
	}
	l.safe = map[string]string{}
	l.dangerous = map[string]string{}
	for _, e := range l.Safe {
		if e.Name == "" || e.Why == "" || !strings.Contains(e.Name, ".") {
			return nil, fmt.Errorf("pickle import lists: safe entry %q needs module.name and why", e.Name)
		}
		if _, dup := l.safe[e.Name]; dup {
			return nil, fmt.Errorf("pickle import lists: duplicate safe entry %q", e.Name)
		}
		l.safe[e.Name] = e.Why
	}
	for _, e := range l.Dangerous {
		if e.Name == "" || e.Why == "" {
			return nil, fmt.Errorf("pickle import lists: dangerous entry %q needs a name and why", e.Name)
		}
		if _, dup := l.dangerous[e.Name]; dup {
			return nil, fmt.Errorf("pickle import lists: duplicate dangerous entry %q", e.Name)
		}
		l.dangerous[e.Name] = e.Why
	}
	for _, e := range l.Safe {
		if _, dup := l.dangerous[e.Name]; dup {
			return nil, fmt.Errorf("pickle import lists: %q is both safe and dangerous", e.Name)
		}
		_, entry, denied := l.matchDangerousEntry(e.Name)
		switch {
		case denied && e.Overrides != entry:
			return nil, fmt.Errorf("pickle import lists: safe %q lies below deny-listed %q; say overrides: %s if that is meant", e.Name, entry, entry)
		case !denied && e.Overrides != "":
			return nil, fmt.Errorf("pickle import lists: safe %q overrides %q, which does not deny it", e.Name, e.Overrides)
		}
	}
	return &l, nil
}

// lists is parsed once from embedded data and never modified.
var lists = func() *Lists {
	l, err := parseLists(listsYAML)
	if err != nil {
		panic(err)
	}
	return l
}()

// EmbeddedLists returns a copy of the embedded allow-list and deny-list,
// sorted by name.
func EmbeddedLists() (version int, safe, dangerous []ListEntry) {
	safe = append([]ListEntry(nil), lists.Safe...)
	dangerous = append([]ListEntry(nil), lists.Dangerous...)
	sort.Slice(safe, func(i, j int) bool { return safe[i].Name < safe[j].Name })
	sort.Slice(dangerous, func(i, j int) bool { return dangerous[i].Name < dangerous[j].Name })
	return lists.Version, safe, dangerous
}

// Classify judges an import of name from module, as a pickle would resolve
// it, and says why. Deny-list first, then the exact allow-list; anything
// else is Unknown.
func Classify(module, name string) (Class, string) {
	return lists.classify(module, name)
}

func (l *Lists) classify(module, name string) (Class, string) {
	c, why := l.classifyOne(module, name)
	if m, ok := l.Compat[module]; ok && m != module {
		c2, why2 := l.classifyOne(m, name)
		if c2 == Dangerous || (c == Unknown && c2 == Safe) {
			c, why = c2, why2+" (Python 2 name "+module+" for "+m+")"
		}
	}
	return c, why
}

func (l *Lists) classifyOne(module, name string) (Class, string) {
	full := module + "." + name
	// The most specific entry wins: an exact allow-list name below a
	// deny-listed module (joblib.numpy_pickle.NumpyArrayWrapper under
	// joblib) is safe; everything else under that module is not.
	if why, ok := l.safe[full]; ok {
		return Safe, why
	}
	if why, ok := l.matchDangerous(full); ok {
		return Dangerous, why
	}
	if strings.Contains(name, ".") {
		parts := strings.Split(name, ".")
		for i, p := range parts {
			if len(p) > 4 && strings.HasPrefix(p, "__") && strings.HasSuffix(p, "__") {
				return Dangerous, "attribute path reaches dunder attribute " + p
			}
			if why, ok := l.matchDangerous(strings.Join(parts[i:], ".")); ok {
				return Dangerous, "attribute path reaches " + strings.Join(parts[i:], ".") + ": " + why
			}
		}
	} else if len(name) > 4 && strings.HasPrefix(name, "__") && strings.HasSuffix(name, "__") {
		return Dangerous, "dunder attribute " + name + " of a module reaches interpreter internals"
	}
	return Unknown, "not on the allow-list of checkpoint imports"
}

// matchDangerous reports whether path is a deny-list entry or lies below one
// (entry "os" matches "os.system" and "os.path.join", not "ossify.x").
func (l *Lists) matchDangerous(path string) (string, bool) {
	why, _, ok := l.matchDangerousEntry(path)
	return why, ok
}

// matchDangerousEntry is matchDangerous that also names the entry.
func (l *Lists) matchDangerousEntry(path string) (string, string, bool) {
	for p := path; ; {
		if why, ok := l.dangerous[p]; ok {
			return "deny-listed " + p + ": " + why, p, true
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			return "", "", false
		}
		p = p[:i]
	}
}

// moduleDangerous reports whether every name of module is dangerous (used
// when STACK_GLOBAL's module is known but its name is not).
func (l *Lists) moduleDangerous(module string) (string, bool) {
	if why, ok := l.matchDangerous(module); ok {
		return why, true
	}
	if m, ok := l.Compat[module]; ok {
		return l.matchDangerous(m)
	}
	return "", false
}
