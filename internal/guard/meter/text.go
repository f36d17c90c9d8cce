package meter

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Text extraction for prompt/response capture (off unless the operator
// turns it on). It runs once per captured request, never per streamed
// line, so it decodes with encoding/json and favours clarity.

// RequestText renders the text of a request body as a model reads it: the
// system prompt, each message as "role: content", the prompt and suffix.
// Inline images, audio and data: URLs are left out. Bodies that are not
// JSON objects are returned as they are.
func RequestText(body []byte) string {
	var req struct {
		System   json.RawMessage `json:"system"`
		Prompt   json.RawMessage `json:"prompt"`
		Suffix   json.RawMessage `json:"suffix"`
		Input    json.RawMessage `json:"input"`
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if json.Unmarshal(body, &req) != nil {
		return string(body)
	}
	var b strings.Builder
	add := func(label string, raw json.RawMessage) {
		t := contentString(raw)
		if t == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		if label != "" {
			b.WriteString(label)
			b.WriteString(": ")
		}
		b.WriteString(t)
	}
	add("system", req.System)
	for _, m := range req.Messages {
		add(m.Role, m.Content)
	}
	add("", req.Prompt)
	add("", req.Input)
	add("suffix", req.Suffix)
	return b.String()
}

// contentString reads a string, an array of strings or text parts
// ([{"type":"text","text":...}]), skipping everything that is not text.
func contentString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if strings.HasPrefix(s, "data:") {
			return ""
		}
		return s
	}
	var parts []json.RawMessage
	if json.Unmarshal(raw, &parts) != nil {
		return ""
	}
	var out []string
	for _, p := range parts {
		var part struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		var t string
		switch {
		case json.Unmarshal(p, &t) == nil:
		case json.Unmarshal(p, &part) == nil && (part.Type == "text" || part.Type == "input_text" || part.Type == ""):
			t = part.Text
		}
		if t != "" && !strings.HasPrefix(t, "data:") {
			out = append(out, t)
		}
	}
	return strings.Join(out, "\n")
}

// ResponseText joins the generated text of a response body as relayed to
// the client: Ollama NDJSON lines ("response", "thinking", "message"
// content), OpenAI SSE events (choices' delta or message content, or
// completion text) or one non-streaming JSON body of either.
func ResponseText(info RequestInfo, body []byte) string {
	var b strings.Builder
	each := func(obj []byte) {
		var v struct {
			Response string `json:"response"`
			Message  *struct {
				Content string `json:"content"`
			} `json:"message"`
			Choices []struct {
				Text  string `json:"text"`
				Delta *struct {
					Content string `json:"content"`
				} `json:"delta"`
				Message *struct {
					Content string `json:"content"`
				} `json:"message"`
			} `json:"choices"`
		}
		if json.Unmarshal(obj, &v) != nil {
			return
		}
		b.WriteString(v.Response)
		if v.Message != nil {
			b.WriteString(v.Message.Content)
		}
		for _, c := range v.Choices {
			b.WriteString(c.Text)
			if c.Delta != nil {
				b.WriteString(c.Delta.Content)
			}
			if c.Message != nil {
				b.WriteString(c.Message.Content)
			}
		}
	}
	switch {
	case !info.Stream || info.Endpoint == EndpointEmbed:
		each(body)
	case info.Kind == KindOpenAI:
		for _, line := range bytes.Split(body, []byte("\n")) {
			data, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r"), []byte("data:"))
			if ok {
				each(bytes.TrimSpace(data))
			}
		}
	default:
		for _, line := range bytes.Split(body, []byte("\n")) {
			if len(bytes.TrimSpace(line)) > 0 {
				each(line)
			}
		}
	}
	return b.String()
}
