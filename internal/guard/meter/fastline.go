package meter

import (
	"errors"
	"math"
	"strconv"
)

// The streaming hot path: every NDJSON line of an Ollama stream passes
// through ollamaChunk. Decoding each one with encoding/json (reflection,
// allocations) was the largest single cost of the guard's relay, so lines
// that encoding/json has already validated (json.Valid, which allocates
// nothing) are walked here instead. The walk only has to find the members
// ollamaLine names; anything it does not handle exactly as encoding/json
// would (escaped or non-ASCII keys, a top level that is not an object)
// makes it give up, and the caller decodes. FuzzFastOllamaChunk checks the
// two agree.

// The members read from a line and from its message object, by index.
var (
	lineKeys    = []string{"response", "thinking", "content", "tool_calls", "message", "done", "eval_count", "prompt_eval_count"}
	messageKeys = []string{"content", "thinking", "tool_calls", "reasoning_content"}
)

const (
	kResponse = iota
	kThinking
	kContent
	kToolCalls
	kMessage
	kDone
	kEvalCount
	kPromptEvalCount
)

// fastOllamaChunk is ollamaChunk for a line json.Valid accepted. ok is false
// when the line needs the full decoder.
func fastOllamaChunk(line []byte) (n int64, u upstreamUsage, ok bool) {
	var v [8][]byte
	if !pickMembers(line, lineKeys, v[:]) {
		return 0, u, false
	}
	switch {
	case nonEmpty(v[kResponse]), nonEmpty(v[kThinking]), nonEmpty(v[kContent]), nonEmpty(v[kToolCalls]):
		n = 1
	case nonEmpty(v[kMessage]):
		if v[kMessage][0] != '{' {
			n = 1 // not an object: encoding/json fails on it, and that counts
			break
		}
		var m [4][]byte
		if !pickMembers(v[kMessage], messageKeys, m[:]) {
			return 0, u, false
		}
		if nonEmpty(m[0]) || nonEmpty(m[1]) || nonEmpty(m[2]) || nonEmpty(m[3]) {
			n = 1
		}
	}
	if string(v[kDone]) == "true" {
		u.final = true
		u.hasCompletion = true
		if v[kEvalCount] != nil {
			u.completion = count(v[kEvalCount])
		}
		if p := v[kPromptEvalCount]; p != nil && string(p) != "null" {
			u.prompt, u.hasPrompt = count(p), true
		}
	}
	return n, u, true
}

// pickMembers sets vals[i] to the value of the member named keys[i]
// (ASCII case ignored, the last of duplicates wins, as in encoding/json);
// false when walkObject gives up.
func pickMembers(obj []byte, keys []string, vals [][]byte) bool {
	return walkObject(obj, func(key, val []byte) {
		for i, name := range keys {
			if asciiFold(key, name) {
				vals[i] = val
				return
			}
		}
	})
}

// walkObject calls fn with each member of the JSON object in data, which
// must be valid JSON. It returns false, having perhaps called fn for some
// members, when data is not an object or a key holds an escape or a
// non-ASCII byte (encoding/json folds some non-ASCII letters onto ASCII
// ones; this walk does not try to).
func walkObject(data []byte, fn func(key, val []byte)) bool { return walkObj(data, fn, true) }

// walkMembers is walkObject for any key: escaped and non-ASCII keys are
// passed on as written (between the quotes).
func walkMembers(data []byte, fn func(key, val []byte)) bool { return walkObj(data, fn, false) }

func walkObj(data []byte, fn func(key, val []byte), strict bool) bool {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return true
	}
	for i < len(data) {
		if data[i] != '"' {
			return false
		}
		k := i + 1
		if strict {
			for k < len(data) && data[k] != '"' {
				if data[k] == '\\' || data[k] >= 0x80 {
					return false
				}
				k++
			}
		} else {
			k = skipString(data, i) - 1
		}
		if k >= len(data) || k < i+1 {
			return false
		}
		key := data[i+1 : k]
		i = skipSpace(data, k+1)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = skipSpace(data, i+1)
		end := skipValue(data, i)
		if end <= i {
			return false
		}
		fn(key, data[i:end])
		i = skipSpace(data, end)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return true
		default:
			return false
		}
	}
	return false
}

// walkArray calls fn with each element of the JSON array in data (valid
// JSON); false when data is not an array.
func walkArray(data []byte, fn func(el []byte)) bool {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return true
	}
	for i < len(data) {
		end := skipValue(data, i)
		if end <= i {
			return false
		}
		fn(data[i:end])
		i = skipSpace(data, end)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case ']':
			return true
		default:
			return false
		}
	}
	return false
}

// skipValue returns the end of the valid JSON value starting at i.
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return i
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(data) {
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
		i++
	}
	return i
}

// skipString returns the index just past the string starting at data[i].
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// asciiFold reports whether key equals name (lower-case ASCII) ignoring
// ASCII case.
func asciiFold(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i := range len(key) {
		c := key[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

// The OpenAI side of the hot path: every SSE event's data passes through
// openAIChunk. fastOpenAIChunk answers the same without decoding, for data
// whose members of interest are spelled exactly as OpenAI spells them
// (a case variant, an escaped or a non-ASCII key sends the data to the
// decoder). FuzzFastOpenAIChunk checks the two agree.

var (
	chunkKeys  = []string{"choices", "usage"}
	choiceKeys = []string{"text", "delta", "message"}
	deltaKeys  = []string{"content", "reasoning_content", "reasoning", "refusal", "tool_calls", "function_call", "audio"}
	usageKeys  = []string{"prompt_tokens", "completion_tokens"}
)

// pickExact is pickMembers for data in which the names of keys appear
// only in exactly that spelling; ok is false when a key matches one of
// names only when case is ignored (the decoder then decides), or the walk
// gives up.
func pickExact(obj []byte, names []string, vals [][]byte) bool {
	exact := true
	ok := walkObject(obj, func(key, val []byte) {
		for i, name := range names {
			if string(key) == name {
				vals[i] = val
				return
			}
			if asciiFold(key, name) {
				exact = false
			}
		}
	})
	return ok && exact
}

// fastOpenAIChunk is openAIChunk for data json.Valid accepted; ok is false
// when the decoder must answer.
func fastOpenAIChunk(data []byte) (n int64, u upstreamUsage, usageOnly, ok bool) {
	var top [2][]byte
	if !pickExact(data, chunkKeys, top[:]) {
		return 0, u, false, false
	}
	hasChoices := false
	if c := top[0]; c != nil && string(c) != "null" {
		if c[0] != '[' {
			return 1, u, false, true // the decoder fails on it, and that counts
		}
		good := true
		walkArray(c, func(el []byte) {
			hasChoices = true
			if !good {
				return
			}
			has, fine := fastChoiceHasContent(el)
			if !fine {
				good = false
			}
			if has {
				n++
			}
		})
		if !good {
			return 0, u, false, false
		}
	}
	if raw := top[1]; raw != nil && string(raw) != "null" && raw[0] == '{' {
		var uv [2][]byte
		if !pickExact(raw, usageKeys, uv[:]) {
			return 0, u, false, false
		}
		if v := uv[0]; v != nil && string(v) != "null" {
			u.prompt, u.hasPrompt = fastCount(v), true
		}
		if v := uv[1]; v != nil && string(v) != "null" {
			u.completion, u.hasCompletion = fastCount(v), true
		}
		if !hasChoices && n == 0 {
			u.final = true
			usageOnly = true
		}
	}
	return n, u, usageOnly, true
}

// fastChoiceHasContent is choiceHasContent for one valid choice; fine is
// false when the decoder must answer. As with the decoder's map, the last
// of duplicate members counts.
func fastChoiceHasContent(el []byte) (has, fine bool) {
	if el[0] != '{' {
		return nonEmpty(el), true
	}
	var v [3][]byte
	if !pickExact(el, choiceKeys, v[:]) {
		return false, false
	}
	if nonEmpty(v[0]) {
		return true, true
	}
	for _, d := range v[1:] {
		if !nonEmpty(d) {
			continue
		}
		if d[0] != '{' {
			return true, true // the decoder fails on it, and that counts
		}
		var dv [7][]byte
		if !pickExact(d, deltaKeys, dv[:]) {
			return false, false
		}
		for _, x := range dv {
			if nonEmpty(x) {
				return true, true
			}
		}
	}
	return false, true
}

// fastCount is count without decoding: a JSON number is read with
// strconv; anything else counts as 0, as count does.
func fastCount(raw []byte) int64 {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0
	}
	if !(f > 0) {
		return 0
	}
	if f >= math.MaxInt64/4 {
		return math.MaxInt64 / 4
	}
	return int64(f)
}
