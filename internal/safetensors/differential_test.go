package safetensors

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/llmfence/llmfence/internal/pythontest"
)

type jsonReq struct {
	Data string `json:"data"`
}

type jsonResp struct {
	OK    bool            `json:"ok"`
	Value json.RawMessage `json:"value"`
	Error string          `json:"error"`
}

// tree is the oracle's tagged rendering of a Python value.
type tree struct {
	D [][2]json.RawMessage `json:"d"`
	L []json.RawMessage    `json:"l"`
	S *[]rune              `json:"s"`
	I *string              `json:"i"`
	F *string              `json:"f"`
	B *bool                `json:"b"`
	N *int                 `json:"n"`
}

// TestDifferentialPythonJSON generates JSON documents (duplicate keys,
// escapes and lone surrogates, NaN and Infinity, every encoding json.loads
// detects, invalid ones, mutations) and compares what parsePythonJSON
// builds — repeated keys resolved to their last value — with what
// Python's json.loads builds from the same bytes. Keras reads config.json
// this way.
func TestDifferentialPythonJSON(t *testing.T) {
	py := pythontest.Need(t)
	n := 3000
	if testing.Short() {
		n = 300
	}
	cases := pythontest.JSONCases(1, n)
	reqs := make([]jsonReq, len(cases))
	for i, c := range cases {
		reqs[i] = jsonReq{Data: base64.StdEncoding.EncodeToString(c.Data)}
	}
	refs := pythontest.Batch[jsonReq, jsonResp](t, py, pythontest.Oracle("json"), reqs)
	bad := 0
	for i, c := range cases {
		v, err := parsePythonJSON(c.Data, 512)
		var problem string
		switch {
		case refs[i].OK && err != nil:
			problem = "Python parses it, llmfence does not: " + err.Error()
		case !refs[i].OK && err == nil:
			problem = "llmfence parses what Python refuses (" + refs[i].Error + ")"
		case refs[i].OK:
			if d := sameTree(v, refs[i].Value, "$"); d != "" {
				problem = d
			}
		}
		if problem != "" {
			bad++
			if bad <= 15 {
				t.Errorf("%s %q: %s", c.Name, c.Data[:min(len(c.Data), 100)], problem)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d documents disagree with json.loads", bad, len(cases))
	}
}

// sameTree compares the effective value (last of repeated keys) with the
// oracle's rendering; "" when equal.
func sameTree(v *jvalue, raw json.RawMessage, at string) string {
	var tr tree
	if err := json.Unmarshal(raw, &tr); err != nil {
		return at + ": bad oracle value"
	}
	switch v.kind {
	case '{':
		keys, vals := v.effective()
		if len(keys) != len(tr.D) {
			return fmt.Sprintf("%s: %d keys, Python has %d", at, len(keys), len(tr.D))
		}
		for i, k := range keys {
			var pk []rune
			json.Unmarshal(tr.D[i][0], &pk)
			if !slices.Equal(wtf8Runes(k), pk) {
				return fmt.Sprintf("%s: key %d is %q, Python %q", at, i, k, string(pk))
			}
			if d := sameTree(vals[i], tr.D[i][1], at+"."+k); d != "" {
				return d
			}
		}
	case '[':
		if len(v.items) != len(tr.L) {
			return at + ": list lengths differ"
		}
		for i := range v.items {
			if d := sameTree(v.items[i], tr.L[i], fmt.Sprintf("%s[%d]", at, i)); d != "" {
				return d
			}
		}
	case 's':
		if tr.S == nil || !slices.Equal(wtf8Runes(v.str), *tr.S) {
			return fmt.Sprintf("%s: string %q differs", at, v.str)
		}
	case 'b':
		if tr.B == nil || *tr.B != v.b {
			return at + ": bool differs"
		}
	case '0':
		if tr.N == nil {
			return at + ": null differs"
		}
	case 'n':
		s := string(v.num)
		isFloat := strings.ContainsAny(s, ".eEaI")
		switch {
		case !isFloat && tr.I != nil:
			a, _ := new(big.Int).SetString(s, 10)
			b, _ := new(big.Int).SetString(*tr.I, 10)
			if a == nil || b == nil || a.Cmp(b) != 0 {
				return at + ": integer differs"
			}
		case isFloat && tr.F != nil:
			if !sameFloat(s, *tr.F) {
				return fmt.Sprintf("%s: float %s differs from %s", at, s, *tr.F)
			}
		default:
			return at + ": number kind differs"
		}
	}
	return ""
}

// wtf8Runes decodes a string that may hold lone surrogates (three-byte
// WTF-8) into its code points.
func wtf8Runes(s string) []rune {
	var rs []rune
	for i := 0; i < len(s); {
		if i+3 <= len(s) && s[i] == 0xED && s[i+1] >= 0xA0 {
			rs = append(rs, rune(s[i]&0x0F)<<12|rune(s[i+1]&0x3F)<<6|rune(s[i+2]&0x3F))
			i += 3
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		rs = append(rs, r)
		i += n
	}
	return rs
}

func sameFloat(num, hex string) bool {
	var want float64
	switch hex {
	case "nan":
		want = math.NaN()
	case "inf":
		want = math.Inf(1)
	case "-inf":
		want = math.Inf(-1)
	default:
		want, _ = strconv.ParseFloat(hex, 64)
	}
	var got float64
	switch num {
	case "NaN":
		got = math.NaN()
	case "Infinity":
		got = math.Inf(1)
	case "-Infinity":
		got = math.Inf(-1)
	default:
		got, _ = strconv.ParseFloat(num, 64)
	}
	if math.IsNaN(want) || math.IsNaN(got) {
		return math.IsNaN(want) && math.IsNaN(got)
	}
	return got == want && math.Signbit(got) == math.Signbit(want)
}
