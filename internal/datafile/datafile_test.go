package datafile

import (
	"errors"
	"strings"
	"testing"
)

type sample struct {
	Version int      `yaml:"version" json:"version"`
	Names   []string `yaml:"names" json:"names"`
}

func (s *sample) check() error {
	if len(s.Names) == 0 {
		return errors.New("no names")
	}
	return nil
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name, file, data string
		want             string // "" for success, else a substring of the error
	}{
		{"yaml", "x/a.yaml", "version: 2\nnames: [a, b]\n", ""},
		{"yml", "x/a.yml", "version: 1\nnames: [a]\n", ""},
		{"json", "x/a.json", `{"version": 3, "names": ["a"]}`, ""},
		{"unknown yaml field", "x/a.yaml", "version: 1\nnames: [a]\nnmaes: [b]\n", "field nmaes not found"},
		{"unknown json field", "x/a.json", `{"version": 1, "names": ["a"], "nmaes": []}`, `unknown field "nmaes"`},
		{"no version", "x/a.yaml", "names: [a]\n", "version"},
		{"zero version", "x/a.yaml", "version: 0\nnames: [a]\n", "version"},
		{"string version", "x/a.yaml", "version: \"1\"\nnames: [a]\n", "version"},
		{"fraction json version", "x/a.json", `{"version": 1.5, "names": ["a"]}`, "version"},
		{"negative json version", "x/a.json", `{"version": -1, "names": ["a"]}`, "version"},
		{"empty", "x/a.yaml", "  \n", "empty file"},
		{"second document", "x/a.yaml", "version: 1\nnames: [a]\n---\nversion: 2\n", "more than one YAML document"},
		{"trailing json", "x/a.json", `{"version": 1, "names": ["a"]} {}`, "after top-level value"},
		{"not a mapping", "x/a.yaml", "- 1\n- 2\n", "cannot unmarshal"},
		{"check refuses", "x/a.yaml", "version: 1\nnames: []\n", "no names"},
		{"unknown format", "x/a.toml", "version = 1\n", "unknown data file format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Decode(tc.file, []byte(tc.data), (*sample).check)
			if tc.want == "" {
				if err != nil || v == nil || v.Version < 1 {
					t.Fatalf("Decode = %+v, %v", v, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Decode accepted it: %+v", v)
			}
			var de *Error
			if !errors.As(err, &de) || de.File != tc.file || !strings.HasPrefix(err.Error(), tc.file+": ") {
				t.Errorf("error %q does not name %s", err, tc.file)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestDecodeNamesTheFileOnce(t *testing.T) {
	_, err := Decode("a.yaml", []byte("version: 1\nnames: [a]\n"), func(*sample) error {
		return Errorf("a.yaml", "entry %d is wrong", 3)
	})
	if err == nil || err.Error() != "a.yaml: entry 3 is wrong" {
		t.Errorf("err = %v", err)
	}
}

func TestDecodeNilCheck(t *testing.T) {
	v, err := Decode[sample]("a.yaml", []byte("version: 1\n"), nil)
	if err != nil || v.Version != 1 || v.Names != nil {
		t.Errorf("Decode = %+v, %v", v, err)
	}
}
