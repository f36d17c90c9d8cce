package abuse

import (
	"encoding/json"
	"math/bits"
	"strings"
	"unicode"
	"unicode/utf8"
)

// promptBody is the part of an Ollama or OpenAI request body that carries
// prompt text; everything else is skipped by the decoder.
type promptBody struct {
	Prompt   json.RawMessage `json:"prompt"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
}

// promptText extracts the text to examine from a request body: the first
// system message (at most a quarter of limit) and the last user message
// (or, without one, the last message), or else the prompt field. Text
// longer than its budget keeps its head and tail halves. It returns "" for
// bodies it cannot read.
func promptText(body []byte, limit int) string {
	var b promptBody
	if json.Unmarshal(body, &b) != nil {
		return ""
	}
	var system, user string
	for _, m := range b.Messages {
		if system == "" && (m.Role == "system" || m.Role == "developer") {
			system = contentText(m.Content, limit)
		}
	}
	for i := len(b.Messages) - 1; i >= 0 && user == ""; i-- {
		if b.Messages[i].Role == "user" {
			user = contentText(b.Messages[i].Content, limit)
		}
	}
	if user == "" && len(b.Messages) > 0 {
		user = contentText(b.Messages[len(b.Messages)-1].Content, limit)
	}
	if user == "" {
		user = contentText(b.Prompt, limit)
	}
	if system == "" {
		return headTail(user, limit)
	}
	system = headTail(system, limit/4)
	return system + "\n\n" + headTail(user, limit-len(system)-2)
}

// contentText reads a string, a text-parts array ([{"type":"text","text":..}])
// or a list of strings (OpenAI legacy prompt), joining at most about limit
// bytes.
func contentText(raw json.RawMessage, limit int) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []json.RawMessage
	if json.Unmarshal(raw, &parts) != nil {
		return ""
	}
	var sb strings.Builder
	for _, p := range parts {
		if sb.Len() > 2*limit {
			break
		}
		var t string
		if json.Unmarshal(p, &t) != nil {
			var part struct {
				Type string `json:"type"`
				Text string `json:"text"`
			}
			if json.Unmarshal(p, &part) != nil || (part.Type != "text" && part.Type != "input_text" && part.Type != "") {
				continue
			}
			t = part.Text
		}
		if t == "" {
			continue
		}
		if sb.Len() > 0 {
			sb.WriteString("\n")
		}
		sb.WriteString(t)
	}
	return sb.String()
}

// headTail cuts s to at most limit bytes: its first and last halves, on
// rune boundaries, joined by a newline.
func headTail(s string, limit int) string {
	if limit <= 0 {
		return ""
	}
	if len(s) <= limit {
		return s
	}
	h := limit / 2
	head := s[:h]
	for len(head) > 0 && !utf8.ValidString(head[max(len(head)-3, 0):]) {
		head = head[:len(head)-1]
	}
	tail := s[len(s)-(limit-h-1):]
	for len(tail) > 0 && !utf8.RuneStart(tail[0]) {
		tail = tail[1:]
	}
	return head + "\n" + tail
}

// simhash returns a 64-bit simhash of text over character 4-gram shingles
// of its normalised form (lower case, letters and digits only), and
// whether the text has at least minChars such characters.
func simhash(text string, minChars int) (uint64, bool) {
	runes := make([]rune, 0, min(len(text), 16<<10))
	for _, r := range text {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			runes = append(runes, unicode.ToLower(r))
		}
	}
	if len(runes) < minChars || len(runes) < 4 {
		return 0, false
	}
	var v [64]int32
	for i := 0; i+4 <= len(runes); i++ {
		h := uint64(14695981039346656037)
		for _, r := range runes[i : i+4] {
			h ^= uint64(r)
			h *= 1099511628211
		}
		h = mix(h)
		for b := range 64 {
			if h&(1<<b) != 0 {
				v[b]++
			} else {
				v[b]--
			}
		}
	}
	var out uint64
	for b := range 64 {
		if v[b] > 0 {
			out |= 1 << b
		}
	}
	return out, true
}

// mix is the splitmix64 finaliser: it spreads FNV's weak high bits.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func hamming(a, b uint64) int { return bits.OnesCount64(a ^ b) }
