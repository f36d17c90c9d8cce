package targets

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/llmfence/llmfence/internal/datafile"
)

//go:embed default_ports.yaml
var defaultPortsYAML []byte

// PortInfo is one entry of the default port table (default_ports.yaml).
type PortInfo struct {
	Port    uint16   `yaml:"port"`
	Servers []string `yaml:"servers"`
	// Fact is the upstream default behind the entry.
	Fact string `yaml:"fact"`
}

// PortTable is the embedded default port table.
type PortTable struct {
	Version int        `yaml:"version"`
	Ports   []PortInfo `yaml:"ports"`
}

// loadPortTable decodes and checks default_ports.yaml once, on first use.
var loadPortTable = sync.OnceValues(func() (*PortTable, error) {
	return decodePortTable(defaultPortsYAML)
})

// DefaultPortTable returns the embedded table of ports self-hosted LLM
// servers listen on out of the box (default_ports.yaml), checked.
func DefaultPortTable() (PortTable, error) {
	t, err := loadPortTable()
	if err != nil {
		return PortTable{}, err
	}
	return *t, nil
}

func decodePortTable(data []byte) (*PortTable, error) {
	return datafile.Decode("internal/targets/default_ports.yaml", data, (*PortTable).check)
}

func (t *PortTable) check() error {
	if len(t.Ports) == 0 {
		return fmt.Errorf("no ports")
	}
	seen := make(map[uint16]bool, len(t.Ports))
	for i, p := range t.Ports {
		switch {
		case p.Port == 0:
			return fmt.Errorf("entry %d: port 0 is not a port", i+1)
		case seen[p.Port]:
			return fmt.Errorf("port %d listed twice", p.Port)
		case len(p.Servers) == 0 || p.Fact == "":
			return fmt.Errorf("port %d needs servers and a fact", p.Port)
		}
		seen[p.Port] = true
	}
	return nil
}

// DefaultPortList returns the ports llmfence scans when the user names
// none, in table order: 11434 Ollama, 8000 vLLM, 8080 llama.cpp server /
// LocalAI / Open WebUI (container) / TGI (usual host mapping), 1234 LM
// Studio, 5000 text-generation-webui API, 5001 KoboldCpp, 7860
// text-generation-webui UI (Gradio), 3000 TGI launcher / Open WebUI (host
// mapping), 4000 LiteLLM proxy, 9997 Xinference, 30000 SGLang, 1337 Jan,
// 4891 GPT4All, 80 and 443 web fronts. default_ports.yaml
// (DefaultPortTable) holds the upstream fact behind each. The slice is a
// new copy.
func DefaultPortList() ([]uint16, error) {
	t, err := loadPortTable()
	if err != nil {
		return nil, err
	}
	out := make([]uint16, len(t.Ports))
	for i, p := range t.Ports {
		out[i] = p.Port
	}
	return out, nil
}

// DefaultPorts is DefaultPortList, computed when the package initialises;
// nil when the embedded table does not load (the package tests rule that
// out), so a caller never sees a panic. Treat it as read-only. New code
// uses DefaultPortList, which says why the table did not load; this stays
// until the scan command and internal/scanrun move over.
var DefaultPorts, _ = DefaultPortList()

// ParsePorts parses a port list such as "11434,8000-8010": comma-separated
// ports and inclusive ranges, each port 1-65535. Duplicates are dropped; the
// first occurrence keeps its place.
func ParsePorts(s string) ([]uint16, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("port list is empty")
	}
	var seen portBits
	var out []uint16
	add := func(p uint16) {
		if !seen.has(p) {
			seen.add(p)
			out = append(out, p)
		}
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("port list %q: empty entry", s)
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := parsePort(strings.TrimSpace(lo))
		if err != nil {
			return nil, fmt.Errorf("port list %q: %w", s, err)
		}
		if !isRange {
			add(a)
			continue
		}
		b, err := parsePort(strings.TrimSpace(hi))
		if err != nil {
			return nil, fmt.Errorf("port list %q: %w", s, err)
		}
		if b < a {
			return nil, fmt.Errorf("port list %q: range %q ends before it starts", s, part)
		}
		for p := uint32(a); p <= uint32(b); p++ {
			add(uint16(p))
		}
	}
	return out, nil
}

// parsePort accepts a decimal port number 1-65535 (digits only, no sign).
func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return uint16(n), nil
}
