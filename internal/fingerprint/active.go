package fingerprint

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/llmfence/llmfence/internal/service"
)

const activePrompt = "Reply with the word OK."

// activeGenerate performs the single benign generation Options.Active
// allows: a four-token reply from the smallest local model. The outcome
// goes to Extra["active_generate"].
func activeGenerate(ctx context.Context, t *target, s *service.Service) {
	m := smallestLocal(s.Models)
	if m == nil {
		s.Extra["active_generate"] = map[string]any{"attempted": false, "reason": "no local model to try"}
		return
	}
	var req Request
	switch s.Product {
	case "ollama":
		b, _ := json.Marshal(map[string]any{
			"model": m.Name, "prompt": activePrompt, "stream": false,
			"options": map[string]any{"num_predict": 4},
		})
		req = Request{Method: http.MethodPost, Path: "/api/generate", Body: string(b)}
	case "http", "koboldcpp", "open-webui":
		s.Extra["active_generate"] = map[string]any{"attempted": false, "reason": "no generation check for " + s.Product}
		return
	default:
		b, _ := json.Marshal(map[string]any{
			"model":      m.Name,
			"messages":   []map[string]string{{"role": "user", "content": activePrompt}},
			"max_tokens": 4, "stream": false,
		})
		req = Request{Method: http.MethodPost, Path: "/v1/chat/completions", Body: string(b)}
	}
	r := t.do(ctx, req, nil)
	out := map[string]any{"attempted": true, "model": m.Name, "request": req.String()}
	if !r.OK() {
		out["generated"] = false
		out["error"] = clean(r.Err.Error(), 256)
	} else {
		out["status"] = r.Status
		out["generated"] = r.Status == http.StatusOK && replyText(s.Product, r) != ""
		out["reply"] = clean(replyText(s.Product, r), 64)
	}
	s.Extra["active_generate"] = out
}

func replyText(product string, r *Response) string {
	if product == "ollama" {
		var g struct {
			Response flexString `json:"response"`
		}
		if decodeInto(r.Body, &g) {
			return string(g.Response)
		}
		return ""
	}
	var c struct {
		Choices []struct {
			Message struct {
				Content flexString `json:"content"`
			} `json:"message"`
			Text flexString `json:"text"`
		} `json:"choices"`
	}
	if decodeInto(r.Body, &c) && len(c.Choices) > 0 {
		if c.Choices[0].Message.Content != "" {
			return string(c.Choices[0].Message.Content)
		}
		return string(c.Choices[0].Text)
	}
	return ""
}

// smallestLocal picks the non-remote model with the smallest known size
// (unknown sizes last), or nil.
func smallestLocal(ms []service.Model) *service.Model {
	var best *service.Model
	for i := range ms {
		m := &ms[i]
		if m.Remote {
			continue
		}
		if best == nil || (m.Size > 0 && (best.Size == 0 || m.Size < best.Size)) {
			best = m
		}
	}
	return best
}
