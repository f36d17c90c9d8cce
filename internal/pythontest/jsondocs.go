package pythontest

import (
	"math/rand/v2"
	"unicode/utf16"
)

// JSONCase is one generated document for the JSON differential tests.
type JSONCase struct {
	Name string
	Data []byte
}

var jsonDocs = []string{
	`{"module": "keras.layers", "class_name": "Dense", "config": {"name": "d"}, "class_name": "Lambda"}`,
	`{"class_name": "Lambda", "class_name": "Dense", "config": {}}`,
	`{"a": 1, "a": {"b": 2}, "a": [3]}`,
	`{"\u0063lass_name": "Lambda", "class_name": "Dense"}`,
	`{"class_name": "Dense", "class\u005fname": "Lambda"}`,
	`{"k": "\ud800", "k\ud800": 1, "k": "\udc00\ud800"}`,
	`{"k": "\ud83d\ude00", "\ud83d": "\ude00"}`,
	`{"x": NaN, "y": Infinity, "z": -Infinity}`,
	`{"x": 1e400, "y": -0, "z": 0.0, "w": 123456789012345678901234567890}`,
	`{"x": 1.5e-7, "y": 2E+3, "z": -12.25}`,
	`[1, 2, {"a": null, "b": true, "c": false}]`,
	`{"a": "tab\there", "b": "\/\\\"\b\f\n\r\t"}`,
	`{"a": [], "b": {}, "c": [[[]]]}`,
	"  \n\t{\"a\" : 1 }\r\n ",
	`{"a": 1,}`,
	`{'a': 1}`,
	`{"a": 1} // comment`,
	`{"a": 01}`,
	`{"a": .5}`,
	`{"a": +1}`,
	`{"a": "\x41"}`,
	`{"a": "` + "\x01" + `"}`,
	`{"a": 1} {"b": 2}`,
	`{"a": nan}`,
	`{"a": -NaN}`,
	`{"a": "\u00e9", "\u00e9": "é"}`,
	`{"module": "os", "class_name": "function", "config": "system"}`,
}

// JSONCases returns documents: duplicate keys in every position, escapes
// (surrogate pairs, lone surrogates), NaN and Infinity, big numbers,
// white space, invalid documents, in every encoding json.loads detects on
// bytes (UTF-8 with and without BOM, UTF-16 and UTF-32, both byte orders,
// with and without BOM), then random mutations.
func JSONCases(seed uint64, n int) []JSONCase {
	var out []JSONCase
	for _, d := range jsonDocs {
		out = append(out, JSONCase{"utf-8", []byte(d)})
		out = append(out, JSONCase{"utf-8-sig", append([]byte{0xEF, 0xBB, 0xBF}, d...)})
		for _, enc := range []string{"utf-16le", "utf-16be", "utf-32le", "utf-32be"} {
			out = append(out, JSONCase{enc, encode(d, enc, false)})
			out = append(out, JSONCase{enc + "-bom", encode(d, enc, true)})
		}
	}
	r := rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d))
	base := len(out)
	alphabet := []byte(`{}[]:,"\u0123456789abcdefNaInfty-+.eE ` + "\t\n\x00\xff")
	for len(out) < base+n {
		src := out[r.IntN(base)]
		if src.Name != "utf-8" {
			continue
		}
		b := append([]byte(nil), src.Data...)
		for range 1 + r.IntN(3) {
			if len(b) == 0 {
				break
			}
			i := r.IntN(len(b))
			c := alphabet[r.IntN(len(alphabet))]
			switch r.IntN(3) {
			case 0:
				b[i] = c
			case 1:
				b = append(b[:i], b[i+1:]...)
			default:
				b = append(b[:i], append([]byte{c}, b[i:]...)...)
			}
		}
		out = append(out, JSONCase{"mutant", b})
	}
	return out
}

func encode(s, enc string, bom bool) []byte {
	var units []uint32
	switch enc {
	case "utf-16le", "utf-16be":
		for _, u := range utf16.Encode([]rune(s)) {
			units = append(units, uint32(u))
		}
		if bom {
			units = append([]uint32{0xFEFF}, units...)
		}
	default:
		for _, r := range s {
			units = append(units, uint32(r))
		}
		if bom {
			units = append([]uint32{0xFEFF}, units...)
		}
	}
	var b []byte
	for _, u := range units {
		switch enc {
		case "utf-16le":
			b = append(b, byte(u), byte(u>>8))
		case "utf-16be":
			b = append(b, byte(u>>8), byte(u))
		case "utf-32le":
			b = append(b, byte(u), byte(u>>8), byte(u>>16), byte(u>>24))
		case "utf-32be":
			b = append(b, byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
		}
	}
	return b
}
