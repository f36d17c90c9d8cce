package meter

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
func walkObject(data []byte, fn func(key, val []byte)) bool {
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
		for k < len(data) && data[k] != '"' {
			if data[k] == '\\' || data[k] >= 0x80 {
				return false
			}
			k++
		}
		if k >= len(data) {
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
