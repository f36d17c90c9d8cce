package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// jvalue is a JSON value that keeps object key order and duplicates:
// encoding/json's maps would silently keep the last of a repeated key.
type jvalue struct {
	kind  byte // '{', '[', 's', 'n', 'b', '0' (null)
	str   string
	num   json.Number
	b     bool
	keys  []string
	vals  []*jvalue
	dups  []string // keys repeated in this object
	items []*jvalue
	off   int64 // input offset where the value ends (approximately starts)
}

func (v *jvalue) get(key string) *jvalue {
	if v == nil || v.kind != '{' {
		return nil
	}
	for i, k := range v.keys {
		if k == key {
			return v.vals[i]
		}
	}
	return nil
}

func (v *jvalue) asString() (string, bool) {
	if v == nil || v.kind != 's' {
		return "", false
	}
	return v.str, true
}

var errTooDeep = errors.New("JSON nested too deeply")

// parseJSON parses one JSON value from b, bounded in depth, and returns it
// with the offset just past it.
func parseJSON(b []byte, maxDepth int) (*jvalue, int64, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := readValue(dec, 0, maxDepth)
	if err != nil {
		return nil, 0, err
	}
	return v, dec.InputOffset(), nil
}

func readValue(dec *json.Decoder, depth, maxDepth int) (*jvalue, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonErr(err)
	}
	return fromToken(dec, tok, depth, maxDepth)
}

func fromToken(dec *json.Decoder, tok json.Token, depth, maxDepth int) (*jvalue, error) {
	off := dec.InputOffset()
	switch t := tok.(type) {
	case json.Delim:
		if depth >= maxDepth {
			return nil, errTooDeep
		}
		switch t {
		case '{':
			v := &jvalue{kind: '{', off: off}
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, jsonErr(err)
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key is not a string")
				}
				val, err := readValue(dec, depth+1, maxDepth)
				if err != nil {
					return nil, err
				}
				if seen[k] {
					v.dups = append(v.dups, k)
				}
				seen[k] = true
				v.keys = append(v.keys, k)
				v.vals = append(v.vals, val)
			}
			if _, err := dec.Token(); err != nil {
				return nil, jsonErr(err)
			}
			return v, nil
		case '[':
			v := &jvalue{kind: '[', off: off}
			for dec.More() {
				val, err := readValue(dec, depth+1, maxDepth)
				if err != nil {
					return nil, err
				}
				v.items = append(v.items, val)
			}
			if _, err := dec.Token(); err != nil {
				return nil, jsonErr(err)
			}
			return v, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case string:
		return &jvalue{kind: 's', str: t, off: off}, nil
	case json.Number:
		return &jvalue{kind: 'n', num: t, off: off}, nil
	case bool:
		return &jvalue{kind: 'b', b: t, off: off}, nil
	case nil:
		return &jvalue{kind: '0', off: off}, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// jsonErr words decoder errors for reports.
func jsonErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errors.New("JSON ends early")
	}
	return err
}
