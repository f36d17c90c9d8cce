// Package datafile decodes llmfence's embedded data files: the detection
// content, tables and catalogues each package keeps as versioned YAML or
// JSON beside its code (see docs/architecture.md).
//
// # Invariants
//
// Every data file is one YAML mapping or JSON object with a positive
// integer "version" field (the content's revision, shown in reports and
// generated docs). Decode refuses:
//
//   - a missing, zero, negative or non-integer version;
//   - a field the Go type does not declare (a typo in a key would
//     otherwise silently drop an entry's condition);
//   - a second YAML document or trailing JSON data;
//   - anything the caller's check function rejects.
//
// Every error names the file (*Error), so a broken file is found without a
// debugger.
//
// # Use
//
// A package loads its data once, on first use, through sync.OnceValues, and
// hands the error to the caller of whatever needed the data; nothing is
// loaded, and nothing panics, while a package initialises:
//
//	var loadTables = sync.OnceValues(func() (*tables, error) {
//		return datafile.Decode("internal/gguf/tables.yaml", tablesYAML, (*tables).check)
//	})
//
// The tests of each package load its real files, so a broken file fails
// the build's tests, not a user's scan.
package datafile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is a data file that could not be loaded.
type Error struct {
	File string // the file as the package names it ("internal/gguf/tables.yaml")
	Err  error
}

func (e *Error) Error() string { return e.File + ": " + e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error for file, for a problem the caller finds in
// data it decoded outside a check function (a cross-file check, say).
func Errorf(file, format string, a ...any) error {
	return &Error{File: file, Err: fmt.Errorf(format, a...)}
}

// Decode decodes data, the file named name, into a new T, then runs check
// on it (nil for none). The format comes from the name: .yaml or .yml for
// YAML, .json for JSON. See the package doc for what is refused.
func Decode[T any](name string, data []byte, check func(*T) error) (*T, error) {
	v := new(T)
	var err error
	switch ext := strings.ToLower(path.Ext(name)); ext {
	case ".yaml", ".yml":
		err = decodeYAML(data, v)
	case ".json":
		err = decodeJSON(data, v)
	default:
		err = fmt.Errorf("unknown data file format %q (want .yaml, .yml or .json)", ext)
	}
	if err == nil && check != nil {
		err = check(v)
	}
	if err != nil {
		var de *Error
		if errors.As(err, &de) && de.File == name {
			return nil, err
		}
		return nil, &Error{File: name, Err: err}
	}
	return v, nil
}

// header is the part of every data file read before the rest, so a file of
// the wrong shape is told as such rather than as an unknown field.
type header struct {
	Version any `yaml:"version" json:"version"`
}

func checkVersion(v any) error {
	switch n := v.(type) {
	case nil:
		return errors.New("missing version")
	case int:
		if n > 0 {
			return nil
		}
		if n == 0 {
			return errors.New("missing version (0)")
		}
	case float64: // JSON numbers
		if n > 0 && n == float64(int64(n)) {
			return nil
		}
		if n == 0 {
			return errors.New("missing version (0)")
		}
	}
	return fmt.Errorf("version %v is not a positive integer", v)
}

func decodeYAML(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("empty file")
	}
	var h header
	if err := yaml.Unmarshal(data, &h); err != nil {
		return err
	}
	if err := checkVersion(h.Version); err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document")
	}
	return nil
}

func decodeJSON(data []byte, v any) error {
	var h header
	// Unmarshal also refuses data after the object.
	if err := json.Unmarshal(data, &h); err != nil {
		return err
	}
	if err := checkVersion(h.Version); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
