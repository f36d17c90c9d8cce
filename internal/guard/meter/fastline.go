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

// fastOllamaChunk is ollamaChunk for a line json.Valid accepted. ok is false
// when the line needs the full decoder.
func fastOllamaChunk(line []byte) (n int64, u upstreamUsage, ok bool) {
	var response, thinking, content, toolCalls, message, done, evalCount, promptEvalCount []byte
	ok = walkObject(line, func(key, val []byte) {
		switch {
		case asciiFold(key, "response"):
			response = val
		case asciiFold(key, "thinking"):
			thinking = val
		case asciiFold(key, "content"):
			content = val
		case asciiFold(key, "tool_calls"):
			toolCalls = val
		case asciiFold(key, "message"):
			message = val
		case asciiFold(key, "done"):
			done = val
		case asciiFold(key, "eval_count"):
			evalCount = val
		case asciiFold(key, "prompt_eval_count"):
			promptEvalCount = val
		}
	})
	if !ok {
		return 0, u, false
	}
	switch {
	case nonEmpty(response), nonEmpty(thinking), nonEmpty(content), nonEmpty(toolCalls):
		n = 1
	case nonEmpty(message):
		if message[0] != '{' {
			n = 1 // not an object: encoding/json fails on it, and that counts
			break
		}
		has, walked := messageHasContent(message)
		if !walked {
			return 0, u, false
		}
		if has {
			n = 1
		}
	}
	if string(done) == "true" {
		u.final = true
		u.hasCompletion = true
		if evalCount != nil {
			u.completion = count(evalCount)
		}
		if promptEvalCount != nil && string(promptEvalCount) != "null" {
			u.prompt, u.hasPrompt = count(promptEvalCount), true
		}
	}
	return n, u, true
}

// messageHasContent reports whether a message object has a non-empty
// content, thinking, tool_calls or reasoning_content (the last of duplicate
// keys counts, as in encoding/json); walked is false when the object needs
// the full decoder.
func messageHasContent(message []byte) (has, walked bool) {
	var c, t, tc, rc []byte
	walked = walkObject(message, func(key, val []byte) {
		switch {
		case asciiFold(key, "content"):
			c = val
		case asciiFold(key, "thinking"):
			t = val
		case asciiFold(key, "tool_calls"):
			tc = val
		case asciiFold(key, "reasoning_content"):
			rc = val
		}
	})
	return nonEmpty(c) || nonEmpty(t) || nonEmpty(tc) || nonEmpty(rc), walked
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
