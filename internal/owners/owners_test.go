package owners

import (
	"strings"
	"testing"
)

const good = `version: 1
owners:
  - team: gpu
    contact: gpu@example.org
    match: [10.20.0.0/16, "*.gpu.example"]
  - team: lab
    contact: lab@example.org
    match: [10.20.5.0/24, "10.20.5.9:8000"]
  - team: one
    contact: one@example.org
    match: ["10.20.5.9:11434"]
`

func TestLookup(t *testing.T) {
	m, err := Parse("owners.yaml", strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host     string
		port     int
		hostname string
		team     string
	}{
		{"10.20.1.1", 11434, "", "gpu"},
		{"10.20.5.1", 11434, "", "lab"},
		{"10.20.5.9", 11434, "", "one"},
		{"10.20.5.9", 8000, "", "lab"},
		{"::ffff:10.20.1.1", 80, "", "gpu"},
		{"192.0.2.1", 80, "a.gpu.example", "gpu"},
		{"192.0.2.1", 80, "gpu.example.org", ""},
	} {
		o, _ := m.Lookup(tc.host, tc.port, tc.hostname)
		if o.Team != tc.team {
			t.Errorf("Lookup(%s:%d %s) = %q, want %q", tc.host, tc.port, tc.hostname, o.Team, tc.team)
		}
	}
}

func TestMalformedOwnersFiles(t *testing.T) {
	for name, bad := range map[string]string{
		"version":   "version: 2\nowners: []\n",
		"unknown":   "version: 1\nowners:\n  - team: a\n    contact: x\n    match: [10.0.0.0/8]\n    colour: red\n",
		"no team":   "version: 1\nowners:\n  - contact: x\n    match: [10.0.0.0/8]\n",
		"twice":     "version: 1\nowners:\n  - {team: a, match: [10.0.0.0/8]}\n  - {team: a, match: [10.1.0.0/16]}\n",
		"bad match": "version: 1\nowners:\n  - {team: a, match: [10.0.0.0/33]}\n",
		"no match":  "version: 1\nowners:\n  - {team: a}\n",
		"not yaml":  "version: [1\n",
	} {
		if _, err := Parse("o.yaml", strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "o.yaml") {
			t.Errorf("%s: %v, want an error naming the file", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(good)
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Parse("f", strings.NewReader(s))
		if err == nil {
			m.Lookup("10.0.0.1", 80, "x.example")
		}
	})
}
