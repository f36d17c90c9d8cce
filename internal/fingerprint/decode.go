package fingerprint

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// Lenient JSON scalars: hostile or odd servers send numbers as strings,
// strings as numbers, or nonsense. These never fail to decode; a value of
// the wrong kind is simply left empty, so one bad field cannot hide the
// rest of a record.

type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if json.Unmarshal(b, &n) == nil {
		*f = flexString(n.String())
	}
	return nil
}

type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	var n json.Number
	if json.Unmarshal(b, &n) == nil {
		if v, err := n.Int64(); err == nil {
			*f = flexInt(v)
		} else if fl, err := n.Float64(); err == nil {
			*f = flexInt(int64(fl))
		}
		return nil
	}
	var s string
	if json.Unmarshal(b, &s) == nil {
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			*f = flexInt(v)
		}
	}
	return nil
}

type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	var v bool
	if json.Unmarshal(b, &v) == nil {
		*f = flexBool(v)
	}
	return nil
}

// flexText accepts a string or an array of strings (joined by newlines).
type flexText string

func (f *flexText) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*f = flexText(s)
		return nil
	}
	var arr []flexString
	if json.Unmarshal(b, &arr) == nil {
		var buf bytes.Buffer
		for i, a := range arr {
			if i > 0 {
				buf.WriteByte('\n')
			}
			buf.WriteString(string(a))
		}
		*f = flexText(buf.String())
	}
	return nil
}

// decodeInto unmarshals a body into v; false if the body is not JSON of a
// compatible shape.
func decodeInto(b []byte, v any) bool {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return false
	}
	return json.Unmarshal(b, v) == nil
}
