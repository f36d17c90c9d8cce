package fingerprint

import (
	"context"
	"net/http"

	"github.com/llmfence/llmfence/internal/service"
)

const activePrompt = "Reply with the word OK."

// activeGenerate performs the single benign generation Options.Active
// allows: a four-token reply from the smallest local model, through the
// product's own generate route (Product.Generate in the catalogue). The
// outcome goes to Extra["active_generate"].
func activeGenerate(ctx context.Context, prod *Product, t *target, s *service.Service) {
	if prod == nil || prod.Generate == nil {
		s.Extra["active_generate"] = map[string]any{"attempted": false, "reason": "no generation check for " + s.Product}
		return
	}
	m := smallestLocal(s.Models)
	if m == nil {
		s.Extra["active_generate"] = map[string]any{"attempted": false, "reason": "no local model to try"}
		return
	}
	req := prod.Generate.request(m.Name, activePrompt)
	r := t.do(ctx, req, nil)
	out := map[string]any{"attempted": true, "model": m.Name, "request": req.String()}
	if !r.OK() {
		out["generated"] = false
		out["error"] = clean(r.Err.Error(), 256)
	} else {
		reply := replyText(prod.Generate, r)
		out["status"] = r.Status
		out["generated"] = r.Status == http.StatusOK && reply != ""
		out["reply"] = clean(reply, 64)
	}
	s.Extra["active_generate"] = out
}

// replyText is the generated text at the spec's reply path, or "".
func replyText(g *GenerateSpec, r *Response) string {
	root, ok := r.JSON()
	if !ok {
		return ""
	}
	for _, v := range lookupJSON(root, g.Reply) {
		if s, ok := v.(string); ok && s != "" {
			return s
		}
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
