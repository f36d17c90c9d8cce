// Package owners reads the owners file of llmfence serve and disclose:
// which team owns which addresses, and how to reach it. Alerts are routed
// by owner, and disclosure reports are written per owner.
//
// The file is YAML, checked strictly (unknown fields refused, version
// checked, every error naming the file and the entry):
//
//	version: 1
//	owners:
//	  - team: gpu-platform
//	    contact: gpu-team@example.org
//	    match: [10.20.0.0/16, "10.30.1.5:11434", "*.gpu.corp.example"]
//
// A match is a CIDR, an address, an address:port, or a host-name glob (one
// leading "*."). The most specific match wins: address:port, then the
// longest prefix, then a host name.
package owners

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Limits on the file.
const (
	MaxFileBytes = 4 << 20
	MaxEntries   = 10000
)

// Owner is one team.
type Owner struct {
	Team    string   `yaml:"team" json:"team"`
	Contact string   `yaml:"contact" json:"contact"`
	Match   []string `yaml:"match" json:"-"`
}

type file struct {
	Version int     `yaml:"version"`
	Owners  []Owner `yaml:"owners"`
}

type rule struct {
	owner  int
	prefix netip.Prefix
	ap     netip.AddrPort
	glob   string
}

// Map finds the owner of a service.
type Map struct {
	owners []Owner
	rules  []rule
}

// Load reads an owners file; "" gives an empty map.
func Load(path string) (*Map, error) {
	if path == "" {
		return &Map{}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("owners file: %w", err)
	}
	defer f.Close()
	return Parse(path, io.LimitReader(f, MaxFileBytes+1))
}

// Parse reads an owners file from r; name is used in errors.
func Parse(name string, r io.Reader) (*Map, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("owners file %s: %w", name, err)
	}
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("owners file %s: larger than %d bytes", name, MaxFileBytes)
	}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("owners file %s: %v", name, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("owners file %s: version %d: this llmfence reads version 1", name, f.Version)
	}
	if len(f.Owners) > MaxEntries {
		return nil, fmt.Errorf("owners file %s: more than %d owners", name, MaxEntries)
	}
	m := &Map{owners: f.Owners}
	teams := map[string]bool{}
	for i, o := range f.Owners {
		where := fmt.Sprintf("owners file %s: owner %d", name, i+1)
		if strings.TrimSpace(o.Team) == "" {
			return nil, fmt.Errorf("%s: no team name", where)
		}
		if teams[o.Team] {
			return nil, fmt.Errorf("%s (%s): team listed twice", where, o.Team)
		}
		teams[o.Team] = true
		if len(o.Match) == 0 {
			return nil, fmt.Errorf("%s (%s): match lists nothing", where, o.Team)
		}
		for _, s := range o.Match {
			r, err := parseMatch(strings.TrimSpace(s))
			if err != nil {
				return nil, fmt.Errorf("%s (%s): match %q: %v", where, o.Team, s, err)
			}
			r.owner = i
			m.rules = append(m.rules, r)
		}
	}
	return m, nil
}

func parseMatch(s string) (rule, error) {
	if s == "" {
		return rule{}, errors.New("empty")
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return rule{prefix: p.Masked()}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return rule{prefix: netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())}, nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return rule{ap: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
	}
	name := strings.ToLower(strings.TrimPrefix(s, "*."))
	if strings.ContainsAny(name, "*/: ") || name == "" {
		return rule{}, errors.New("not a CIDR, an address, address:port, or host name (a leading *. is allowed)")
	}
	return rule{glob: strings.ToLower(s)}, nil
}

// Lookup returns the owner of host:port (hostname as scanned, may be ""),
// and false when none matches.
func (m *Map) Lookup(host string, port int, hostname string) (Owner, bool) {
	if m == nil {
		return Owner{}, false
	}
	a, err := netip.ParseAddr(host)
	best, bestBits := -1, -2
	if err == nil {
		a = a.Unmap()
		for _, r := range m.rules {
			switch {
			case r.ap.IsValid() && r.ap.Addr() == a && int(r.ap.Port()) == port:
				return m.owners[r.owner], true
			case r.prefix.IsValid() && r.prefix.Contains(a) && r.prefix.Bits() > bestBits:
				best, bestBits = r.owner, r.prefix.Bits()
			}
		}
	}
	if best >= 0 {
		return m.owners[best], true
	}
	h := strings.ToLower(hostname)
	for _, r := range m.rules {
		if r.glob == "" || h == "" {
			continue
		}
		if g, ok := strings.CutPrefix(r.glob, "*."); ok {
			if strings.HasSuffix(h, "."+g) {
				return m.owners[r.owner], true
			}
		} else if h == r.glob {
			return m.owners[r.owner], true
		}
	}
	return Owner{}, false
}

// Team returns the owner's team name for host:port ("" for none).
func (m *Map) Team(host string, port int) string {
	o, _ := m.Lookup(host, port, "")
	return o.Team
}

// Owners lists every owner in file order.
func (m *Map) Owners() []Owner { return m.owners }
