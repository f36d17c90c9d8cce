package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
)

// Each stack's upstream source is named above its builder and in STACKS.md.

func openAIModelList(data []any) map[string]any {
	return map[string]any{"object": "list", "data": data}
}

func (s *server) created() int64 { return s.now().Unix() }

// --- vLLM: vllm/entrypoints/openai/api_server.py (routes, /version,
// /health, --api-key middleware that guards only paths under /v1 and answers
// {"error": "Unauthorized"}), vllm/entrypoints/openai/protocol.py
// (ModelCard: owned_by "vllm", root, parent, max_model_len, permission).

func vllmStack(s *server) stack {
	rs := []route{
		{method: "GET", path: "/v1/models", h: s.vllmModels("vllm")},
		{method: "GET", path: "/version", open: true, h: s.versionJSON},
		{method: "GET", path: "/health", open: true, h: emptyOK},
		{method: "GET", path: "/metrics", open: true, h: s.vllmMetrics},
	}
	rs = append(rs, s.openAIWriteRoutes()...)
	return stack{routes: rs, notFound: fastapiNotFound, methodNotAllowed: fastapiMethodNotAllowed,
		unauthorized: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "Unauthorized"})
		}}
}

func emptyOK(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }

func (s *server) versionJSON(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": s.p.Version})
}

func hexID(name string) string {
	h := sha256.Sum256([]byte(name))
	return hex.EncodeToString(h[:])
}

func modelPermID(name string) string { return "modelperm-" + hexID(name)[:32] }

func (s *server) vllmModels(owner string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		created := s.created()
		data := make([]any, 0, len(s.p.Models))
		for _, m := range s.p.Models {
			card := map[string]any{
				"id": m.ID, "object": "model", "created": created, "owned_by": owner,
				"root": m.ID, "parent": nil, "max_model_len": 32768,
			}
			if owner == "vllm" {
				card["permission"] = []any{map[string]any{
					"id": modelPermID(m.ID), "object": "model_permission", "created": created,
					"allow_create_engine": false, "allow_sampling": true, "allow_logprobs": true,
					"allow_search_indices": false, "allow_view": true, "allow_fine_tuning": false,
					"organization": "*", "group": nil, "is_blocking": false,
				}}
			}
			data = append(data, card)
		}
		writeJSON(w, http.StatusOK, openAIModelList(data))
	}
}

func (s *server) vllmMetrics(w http.ResponseWriter, _ *http.Request) {
	var b strings.Builder
	b.WriteString("# HELP vllm:num_requests_running Number of requests currently running on GPU.\n# TYPE vllm:num_requests_running gauge\n")
	for _, m := range s.p.Models {
		fmt.Fprintf(&b, "vllm:num_requests_running{model_name=%q} 0.0\n", m.ID)
	}
	b.WriteString("# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.\n# TYPE vllm:gpu_cache_usage_perc gauge\n")
	for _, m := range s.p.Models {
		fmt.Fprintf(&b, "vllm:gpu_cache_usage_perc{model_name=%q} 0.0\n", m.ID)
	}
	writeText(w, http.StatusOK, "text/plain; version=0.0.4; charset=utf-8", b.String())
}

// --- SGLang: python/sglang/srt/entrypoints/http_server.py (/health,
// /get_model_info, /get_server_info, /v1/models), openai_api/protocol.py
// (ModelCard owned_by "sglang"), utils add_api_key_middleware (401
// {"error": "Unauthorized"}; /health stays open).

func sglangStack(s *server) stack {
	rs := []route{
		{method: "GET", path: "/health", open: true, h: emptyOK},
		{method: "GET", path: "/health_generate", write: true, h: emptyOK},
		{method: "GET", path: "/get_model_info", h: s.sglangModelInfo},
		{method: "GET", path: "/get_server_info", h: s.sglangServerInfo},
		{method: "GET", path: "/v1/models", h: s.vllmModels("sglang")},
		{method: "POST", path: "/generate", write: true, h: s.openAIChat},
	}
	rs = append(rs, s.openAIWriteRoutes()...)
	return stack{routes: rs, notFound: fastapiNotFound, methodNotAllowed: fastapiMethodNotAllowed,
		unauthorized: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "Unauthorized"})
		}}
}

func (s *server) firstModel() Model {
	if len(s.p.Models) == 0 {
		return Model{}
	}
	return s.p.Models[0]
}

func (s *server) sglangModelInfo(w http.ResponseWriter, _ *http.Request) {
	m := s.firstModel()
	writeJSON(w, http.StatusOK, map[string]any{"model_path": m.ID, "tokenizer_path": m.ID, "is_generation": !m.Embedding})
}

func (s *server) sglangServerInfo(w http.ResponseWriter, _ *http.Request) {
	m := s.firstModel()
	writeJSON(w, http.StatusOK, map[string]any{
		"model_path": m.ID, "tokenizer_path": m.ID, "served_model_name": m.ID,
		"host": "0.0.0.0", "port": s.p.Port, "tp_size": 1, "dp_size": 1,
		"context_length": nil, "mem_fraction_static": 0.88, "max_running_requests": nil,
		"attention_backend": "flashinfer", "max_total_num_tokens": 412160, "version": s.p.Version,
	})
}

// --- llama.cpp: tools/server/server.cpp (routes; Server header
// "llama.cpp"; API-key middleware with public /health, /models, /v1/models,
// /api/tags and "/"; error JSON {"error":{"code","message","type"}}; /props
// get_props; /v1/models handle_models with owned_by "llamacpp" and meta).

func llamacppStack(s *server) stack {
	newer := versionAtLeast(strings.TrimPrefix(s.p.Version, "b"), "5000")
	rs := []route{
		{method: "GET", path: "/", open: true, h: llamacppIndex},
		{method: "GET", path: "/health", open: true, h: func(w http.ResponseWriter, _ *http.Request) {
			cppJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}},
		{method: "GET", path: "/v1/models", open: true, h: s.llamacppModels(newer)},
		{method: "GET", path: "/models", open: true, h: s.llamacppModels(newer)},
		{method: "GET", path: "/props", h: s.llamacppProps},
		{method: "GET", path: "/slots", h: s.llamacppSlots},
		{method: "GET", path: "/metrics", h: func(w http.ResponseWriter, _ *http.Request) {
			llamacppError(w, http.StatusNotImplemented, "This server does not support metrics endpoint. Start it with `--metrics`", "not_supported_error")
		}},
		{method: "POST", path: "/completion", write: true, h: s.openAIChat},
		{method: "POST", path: "/completions", write: true, h: s.openAIChat},
		{method: "POST", path: "/embedding", write: true, h: s.openAIEmbeddings},
		{method: "POST", path: "/tokenize", h: func(w http.ResponseWriter, _ *http.Request) {
			cppJSON(w, http.StatusOK, map[string]any{"tokens": []int{9906, 0}})
		}},
	}
	if newer {
		rs = append(rs, route{method: "GET", path: "/api/tags", open: true, h: s.llamacppModels(newer)})
	}
	rs = append(rs, s.openAIWriteRoutes()...)
	return stack{routes: rs,
		notFound: func(w http.ResponseWriter, _ *http.Request) {
			llamacppError(w, http.StatusNotFound, "File Not Found", "not_found_error")
		},
		unauthorized: func(w http.ResponseWriter, _ *http.Request) {
			llamacppError(w, http.StatusUnauthorized, "Invalid API Key", "authentication_error")
		}}
}

func llamacppError(w http.ResponseWriter, code int, msg, typ string) {
	cppJSON(w, code, map[string]any{"error": map[string]any{"code": code, "message": msg, "type": typ}})
}

func llamacppIndex(w http.ResponseWriter, _ *http.Request) {
	writeText(w, http.StatusOK, "text/html; charset=utf-8", "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"UTF-8\" />\n<title>llama.cpp - chat</title>\n</head>\n<body><div id=\"app\"></div></body>\n</html>\n")
}

func (s *server) llamacppModels(newer bool) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		m := s.firstModel()
		info := map[string]any{
			"id": m.ID, "object": "model", "created": s.created(), "owned_by": "llamacpp",
			"meta": map[string]any{"vocab_type": 2, "n_vocab": 128256, "n_ctx_train": 131072,
				"n_embd": 3072, "n_params": parameterCount(m.ParameterSize), "size": m.Size},
		}
		resp := map[string]any{"object": "list", "data": []any{info}}
		if newer {
			resp["models"] = []any{map[string]any{
				"name": m.ID, "model": m.ID, "modified_at": "", "size": "", "digest": "",
				"type": "model", "description": "", "tags": []string{""},
				"capabilities": []string{"completion"}, "parameters": "",
				"details": map[string]any{"parent_model": "", "format": "gguf", "family": "",
					"families": []string{""}, "parameter_size": "", "quantization_level": ""},
			}}
		}
		cppJSON(w, http.StatusOK, resp)
	}
}

func (s *server) llamacppProps(w http.ResponseWriter, _ *http.Request) {
	m := s.firstModel()
	cppJSON(w, http.StatusOK, map[string]any{
		"default_generation_settings": map[string]any{
			"n_ctx":  4096,
			"params": map[string]any{"temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.05, "n_predict": -1, "seed": 4294967295},
		},
		"total_slots":   1,
		"model_path":    m.ID,
		"modalities":    map[string]bool{"vision": false, "audio": false},
		"chat_template": templateFor(m.Family),
		"bos_token":     "<|begin_of_text|>",
		"eos_token":     "<|eot_id|>",
		"build_info":    s.p.Version + "-4a8ccb37",
	})
}

func (s *server) llamacppSlots(w http.ResponseWriter, _ *http.Request) {
	cppJSON(w, http.StatusOK, []any{map[string]any{"id": 0, "id_task": -1, "n_ctx": 4096, "speculative": false, "is_processing": false}})
}

// --- LM Studio (closed source): lmstudio.ai/docs/app/api/endpoints/rest
// (/api/v0/models fields) and .../endpoints/openai (/v1/models). The server
// is Express ("X-Powered-By: Express").

func lmstudioStack(s *server) stack {
	rs := []route{
		{method: "GET", path: "/v1/models", h: s.lmstudioV1Models},
		{method: "GET", path: "/api/v0/models", h: s.lmstudioV0Models},
		{method: "POST", path: "/api/v0/chat/completions", write: true, h: s.openAIChat},
		{method: "POST", path: "/api/v0/completions", write: true, h: s.openAIChat},
	}
	rs = append(rs, s.openAIWriteRoutes()...)
	for i := range rs {
		rs[i].h = withHeader("X-Powered-By", "Express", rs[i].h)
	}
	nf := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Powered-By", "Express")
		writeJSON(w, http.StatusOK, map[string]string{"error": fmt.Sprintf("Unexpected endpoint or method. (%s %s)", r.Method, r.URL.Path)})
	}
	return stack{routes: rs, notFound: nf, unauthorized: nf}
}

func withHeader(k, v string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(k, v)
		h(w, r)
	}
}

func (s *server) lmstudioV1Models(w http.ResponseWriter, _ *http.Request) {
	data := make([]any, 0, len(s.p.Models))
	for _, m := range s.p.Models {
		data = append(data, map[string]any{"id": m.ID, "object": "model", "owned_by": "organization_owner"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "object": "list"})
}

func (s *server) lmstudioV0Models(w http.ResponseWriter, _ *http.Request) {
	data := make([]any, 0, len(s.p.Models))
	for i, m := range s.p.Models {
		typ, state := "llm", "not-loaded"
		if m.Embedding {
			typ = "embeddings"
		}
		if i == 0 {
			state = "loaded"
		}
		publisher := "lmstudio-community"
		data = append(data, map[string]any{
			"id": m.ID, "object": "model", "type": typ, "publisher": publisher,
			"arch": m.Family, "compatibility_type": "gguf", "quantization": m.Quantization,
			"state": state, "max_context_length": 131072,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

// --- LocalAI: core/http/app.go and core/http/routes/*.go (/readyz and
// /healthz always open, /v1/models, /system, /version, /models/apply), the
// key-auth middleware's 401 body, Fiber's "Cannot GET /x" 404.

func localaiStack(s *server) stack {
	ok := func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "text/plain; charset=utf-8", "OK")
	}
	rs := []route{
		{method: "GET", path: "/", h: func(w http.ResponseWriter, _ *http.Request) {
			writeText(w, http.StatusOK, "text/html; charset=utf-8", "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<title>LocalAI API - "+s.p.Version+"</title>\n</head>\n<body></body>\n</html>\n")
		}},
		{method: "GET", path: "/readyz", open: true, h: ok},
		{method: "GET", path: "/healthz", open: true, h: ok},
		{method: "GET", path: "/v1/models", h: s.localaiModels},
		{method: "GET", path: "/models", h: s.localaiModels},
		{method: "GET", path: "/version", h: s.versionJSON},
		{method: "POST", path: "/models/apply", write: true, h: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"uuid": "00000000-0000-0000-0000-000000000000", "status": "http://localhost:8080/models/jobs/00000000-0000-0000-0000-000000000000"})
		}},
	}
	if versionAtLeast(s.p.Version, "2.22.0") {
		rs = append(rs, route{method: "GET", path: "/system", h: s.localaiSystem})
	}
	rs = append(rs, s.openAIWriteRoutes()...)
	return stack{routes: rs,
		notFound: func(w http.ResponseWriter, r *http.Request) {
			writeText(w, http.StatusNotFound, "text/plain; charset=utf-8", "Cannot "+r.Method+" "+r.URL.Path)
		},
		unauthorized: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{"code": 401, "message": "An authentication key is required", "type": "invalid_request_error"}})
		}}
}

func (s *server) localaiModels(w http.ResponseWriter, _ *http.Request) {
	data := make([]any, 0, len(s.p.Models))
	for _, m := range s.p.Models {
		data = append(data, map[string]any{"id": m.ID, "object": "model"})
	}
	writeJSON(w, http.StatusOK, openAIModelList(data))
}

func (s *server) localaiSystem(w http.ResponseWriter, _ *http.Request) {
	loaded := []any{}
	if len(s.p.Models) > 0 {
		loaded = append(loaded, map[string]string{"id": s.p.Models[0].ID})
	}
	writeJSON(w, http.StatusOK, map[string]any{"backends": []string{"llama-cpp", "whisper", "stablediffusion"}, "loaded_models": loaded})
}

// --- TGI: router/src/server.rs (/info → Info struct, /health, /metrics,
// /generate, /generate_stream, /v1/chat/completions; axum's empty 404).

func tgiStack(s *server) stack {
	rs := []route{
		{method: "GET", path: "/info", h: s.tgiInfo},
		{method: "GET", path: "/health", h: emptyOK},
		{method: "GET", path: "/metrics", h: func(w http.ResponseWriter, _ *http.Request) {
			writeText(w, http.StatusOK, "text/plain; version=0.0.4", "# TYPE tgi_request_count counter\ntgi_request_count 0\n# TYPE tgi_queue_size gauge\ntgi_queue_size 0\n")
		}},
		{method: "POST", path: "/generate", write: true, h: s.tgiGenerate},
		{method: "POST", path: "/generate_stream", write: true, h: s.tgiGenerate},
		{method: "POST", path: "/", write: true, h: s.tgiCompatGenerate},
	}
	if versionAtLeast(s.p.Version, "1.4.0") {
		rs = append(rs, route{method: "POST", path: "/v1/chat/completions", write: true, h: s.openAIChat})
	}
	nf := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) }
	return stack{routes: rs, notFound: nf, unauthorized: nf}
}

func (s *server) tgiInfo(w http.ResponseWriter, _ *http.Request) {
	m := s.firstModel()
	info := map[string]any{
		"model_id": m.ID, "model_sha": hexID(m.ID)[:40], "model_dtype": "torch.float16",
		"model_device_type": "cuda", "model_pipeline_tag": "text-generation",
		"max_concurrent_requests": 128, "max_best_of": 2, "max_stop_sequences": 4,
		"max_total_tokens": 8192, "validation_workers": 2, "max_client_batch_size": 4,
		"router": "text-generation-router", "version": s.p.Version, "sha": "b70ae0969e4e6c3d3c1d3b5e2a7fa5e4b2c8b1f0",
		"docker_label": "sha-b70ae09",
	}
	if versionAtLeast(s.p.Version, "2.0.0") {
		info["max_input_tokens"] = 4095
	} else {
		info["max_input_length"] = 4095
		info["waiting_served_ratio"] = 0.3
		info["max_batch_total_tokens"] = 16000
		info["max_waiting_tokens"] = 20
	}
	writeJSON(w, http.StatusOK, info)
}

// tgiGenerate is /generate's GenerateResponse; tgiCompatGenerate is "/",
// which wraps it in a list "to match api-inference" (server.rs
// compat_generate).
func (s *server) tgiGenerate(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"generated_text": completionText})
}

func (s *server) tgiCompatGenerate(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []any{map[string]string{"generated_text": completionText}})
}

// --- text-generation-webui: extensions/openai/script.py (routes,
// verify_api_key → HTTPException 401 "Unauthorized"), models.py
// (list_models: owned_by "user"; get_current_model_info: model_name,
// lora_names).

func tgwuiStack(s *server) stack {
	rs := []route{
		{method: "GET", path: "/v1/models", h: s.tgwuiModels},
		{method: "GET", path: "/v1/internal/model/info", h: func(w http.ResponseWriter, _ *http.Request) {
			resp := map[string]any{"model_name": s.firstModel().ID, "lora_names": []string{}}
			if versionAtLeast(strings.TrimPrefix(s.p.Version, "v"), "2.0") {
				resp["loader"] = "llama.cpp"
			}
			writeJSON(w, http.StatusOK, resp)
		}},
		{method: "GET", path: "/v1/internal/model/list", h: func(w http.ResponseWriter, _ *http.Request) {
			names := []string{}
			for _, m := range s.p.Models {
				names = append(names, m.ID)
			}
			writeJSON(w, http.StatusOK, map[string]any{"model_names": names})
		}},
		{method: "POST", path: "/v1/internal/model/load", write: true, h: func(w http.ResponseWriter, _ *http.Request) {
			writeText(w, http.StatusOK, "application/json", `"OK"`)
		}},
	}
	rs = append(rs, s.openAIWriteRoutes()...)
	return stack{routes: rs, notFound: fastapiNotFound, methodNotAllowed: fastapiMethodNotAllowed,
		unauthorized: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"detail": "Unauthorized"})
		}}
}

func (s *server) tgwuiModels(w http.ResponseWriter, _ *http.Request) {
	data := make([]any, 0, len(s.p.Models))
	for _, m := range s.p.Models {
		data = append(data, map[string]any{"id": m.ID, "object": "model", "created": 0, "owned_by": "user"})
	}
	writeJSON(w, http.StatusOK, openAIModelList(data))
}

// --- Open WebUI: backend/open_webui/main.py (/api/config public shape,
// /api/version, /health, /api/models behind get_verified_user → 401
// {"detail": "Not authenticated"}), index.html title "Open WebUI".
// AuthRequired=false models WEBUI_AUTH=False.

func openwebuiStack(s *server) stack {
	rs := []route{
		{method: "GET", path: "/", open: true, h: func(w http.ResponseWriter, _ *http.Request) {
			writeText(w, http.StatusOK, "text/html; charset=utf-8", "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n<link rel=\"icon\" type=\"image/png\" href=\"/static/favicon.png\" />\n<title>Open WebUI</title>\n</head>\n<body data-sveltekit-preload-data=\"hover\"><div style=\"display: contents\"></div></body>\n</html>\n")
		}},
		{method: "GET", path: "/health", open: true, h: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]bool{"status": true})
		}},
		{method: "GET", path: "/api/version", open: true, h: s.versionJSON},
		{method: "GET", path: "/api/config", open: true, h: s.openwebuiConfig},
		{method: "GET", path: "/api/models", h: s.openwebuiModels},
		{method: "GET", path: "/ollama/api/tags", h: s.ollamaTags},
		{method: "POST", path: "/api/chat/completions", write: true, h: s.openAIChat},
		{method: "POST", path: "/ollama/api/pull", write: true, h: ollamaStatus(http.StatusOK, `{"status":"success"}`)},
	}
	return stack{routes: rs, notFound: fastapiNotFound, methodNotAllowed: fastapiMethodNotAllowed,
		unauthorized: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"detail": "Not authenticated"})
		}}
}

func (s *server) openwebuiConfig(w http.ResponseWriter, _ *http.Request) {
	features := map[string]any{
		"auth": s.p.AuthRequired, "auth_trusted_header": false, "enable_signup": s.p.AuthRequired,
		"enable_login_form": true, "enable_websocket": true,
	}
	if versionAtLeast(s.p.Version, "0.5.0") {
		features["enable_ldap"] = false
		features["enable_api_key"] = true
	}
	cfg := map[string]any{
		"status": true, "name": "Open WebUI", "version": s.p.Version, "default_locale": "",
		"features": features,
	}
	if versionAtLeast(s.p.Version, "0.4.0") {
		cfg["oauth"] = map[string]any{"providers": map[string]any{}}
	}
	writeJSON(w, http.StatusOK, cfg)
}

func (s *server) openwebuiModels(w http.ResponseWriter, _ *http.Request) {
	data := make([]any, 0, len(s.p.Models))
	for i := range s.p.Models {
		m := &s.p.Models[i]
		data = append(data, map[string]any{
			"id": m.Name, "name": m.Name, "object": "model", "created": modifiedAt(m).Unix(),
			"owned_by": "ollama", "ollama": s.ollamaListEntry(m), "urlIdx": 0,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

// --- KoboldCpp: koboldcpp.py ServerRequestHandler (server_version
// "ConcedoLlamaForKoboldServer"; /api/v1/model, /api/v1/info/version,
// /api/extra/version with "protected", /v1/models; --password guards the
// generation routes only).

func koboldStack(s *server) stack {
	rs := []route{
		{method: "GET", path: "/api/v1/model", open: true, h: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"result": s.firstModel().ID})
		}},
		{method: "GET", path: "/api/v1/info/version", open: true, h: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"result": "1.2.5"})
		}},
		{method: "GET", path: "/api/extra/version", open: true, h: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"result": "KoboldCpp", "version": s.p.Version,
				"protected": s.p.AuthRequired, "txt2img": false, "vision": false, "transcribe": false,
				"multiplayer": false, "websearch": false, "tts": false, "embeddings": false})
		}},
		{method: "GET", path: "/v1/models", open: true, h: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, openAIModelList([]any{map[string]any{"id": s.firstModel().ID,
				"object": "model", "created": 1, "owned_by": "koboldcpp", "permission": []any{}, "root": "koboldcpp"}}))
		}},
		{method: "POST", path: "/api/v1/generate", write: true, h: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"results": []any{map[string]string{"text": completionText}}})
		}},
		{method: "POST", path: "/api/extra/generate/stream", write: true, h: s.openAIChat},
	}
	rs = append(rs, s.openAIWriteRoutes()...)
	return stack{routes: rs,
		notFound: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not Found"})
		},
		unauthorized: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"detail": map[string]string{
				"error": "Unauthorized", "msg": "Authentication key is missing or invalid.", "type": "unauthorized"}})
		}}
}

// --- LiteLLM: litellm/proxy/proxy_server.py (/v1/models, /model/info),
// proxy/health_endpoints/_health_endpoints.py (/health/liveliness "I'm
// alive!", /health/readiness with litellm_version), proxy/auth/
// user_api_key_auth.py (401 auth_error JSON when a master key is set).

func litellmStack(s *server) stack {
	rs := []route{
		{method: "GET", path: "/", open: true, h: func(w http.ResponseWriter, _ *http.Request) {
			writeText(w, http.StatusOK, "text/html; charset=utf-8", "<!DOCTYPE html>\n<html>\n<head>\n<title>LiteLLM API - Swagger UI</title>\n</head>\n<body><div id=\"swagger-ui\"></div></body>\n</html>")
		}},
		{method: "GET", path: "/health/liveliness", open: true, h: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, "I'm alive!")
		}},
		{method: "GET", path: "/health/readiness", open: true, h: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"status": "healthy", "db": "Not connected", "cache": nil,
				"litellm_version": s.p.Version, "success_callbacks": []string{}})
		}},
		{method: "GET", path: "/v1/models", h: s.litellmModels},
		{method: "GET", path: "/models", h: s.litellmModels},
		{method: "GET", path: "/model/info", h: s.litellmModelInfo},
		{method: "GET", path: "/v1/model/info", h: s.litellmModelInfo},
		{method: "POST", path: "/chat/completions", write: true, h: s.openAIChat},
		{method: "POST", path: "/model/new", write: true, h: emptyOK},
	}
	rs = append(rs, s.openAIWriteRoutes()...)
	return stack{routes: rs, notFound: fastapiNotFound, methodNotAllowed: fastapiMethodNotAllowed,
		unauthorized: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{
				"message": "Authentication Error, No api key passed in.", "type": "auth_error", "param": "None", "code": "401"}})
		}}
}

func (s *server) litellmModels(w http.ResponseWriter, _ *http.Request) {
	data := make([]any, 0, len(s.p.Models))
	for _, m := range s.p.Models {
		data = append(data, map[string]any{"id": m.ID, "object": "model", "created": 1677610602, "owned_by": "openai"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "object": "list"})
}

func (s *server) litellmModelInfo(w http.ResponseWriter, _ *http.Request) {
	data := make([]any, 0, len(s.p.Models))
	for _, m := range s.p.Models {
		data = append(data, map[string]any{
			"model_name":     m.ID,
			"litellm_params": map[string]any{"model": "ollama/" + m.ID, "api_base": "http://ollama:11434"},
			"model_info":     map[string]any{"id": modelPermID(m.ID)[10:], "db_model": false, "mode": "chat", "litellm_provider": "ollama"},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

// --- Xinference: xinference/api/restful_api.py (/v1/models with
// model_type, address, accelerators...; /v1/cluster/version;
// /v1/cluster/auth unguarded, {"auth": bool}; OAuth2 bearer 401 {"detail": "Not
// authenticated"} when auth is configured).

func xinferenceStack(s *server) stack {
	rs := []route{
		{method: "GET", path: "/v1/models", h: s.xinferenceModels},
		{method: "GET", path: "/v1/cluster/auth", open: true, h: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]bool{"auth": s.p.AuthRequired})
		}},
		{method: "GET", path: "/v1/cluster/version", h: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"version": s.p.Version, "full-revisionid": "3f4b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b",
				"dirty": false, "error": nil, "date": "2025-05-16T10:12:08+0800"})
		}},
		{method: "POST", path: "/v1/models", write: true, h: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"model_uid": "lab-model"})
		}},
	}
	rs = append(rs, s.openAIWriteRoutes()...)
	return stack{routes: rs, notFound: fastapiNotFound, methodNotAllowed: fastapiMethodNotAllowed,
		unauthorized: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeJSON(w, http.StatusUnauthorized, map[string]string{"detail": "Not authenticated"})
		}}
}

func (s *server) xinferenceModels(w http.ResponseWriter, _ *http.Request) {
	data := make([]any, 0, len(s.p.Models))
	for _, m := range s.p.Models {
		typ, ability := "LLM", []string{"generate", "chat"}
		if m.Embedding {
			typ, ability = "embedding", nil
		}
		size := float64(parameterCount(m.ParameterSize)) / 1e9
		data = append(data, map[string]any{
			"id": m.ID, "object": "model", "created": 0, "owned_by": "xinference",
			"model_type": typ, "address": "0.0.0.0:38261", "accelerators": []string{"0"},
			"model_name": m.ID, "model_lang": []string{"en", "zh"}, "model_ability": ability,
			"model_description": m.ID, "model_format": m.Format, "model_size_in_billions": size,
			"model_family": m.ID, "quantization": m.Quantization, "model_hub": "huggingface",
			"revision": nil, "context_length": 32768, "replica": 1,
		})
	}
	writeJSON(w, http.StatusOK, openAIModelList(data))
}

// --- GPT4All: gpt4all-chat/src/server.cpp (/v1/models entries with
// owned_by "humanity", root, parent, permissions; /v1/completions,
// /v1/chat/completions).

func gpt4allStack(s *server) stack {
	rs := []route{{method: "GET", path: "/v1/models", h: func(w http.ResponseWriter, _ *http.Request) {
		data := make([]any, 0, len(s.p.Models))
		for _, m := range s.p.Models {
			data = append(data, map[string]any{
				"created": 0, "id": m.ID, "object": "model", "owned_by": "humanity", "parent": nil, "root": m.ID,
				"permissions": []any{map[string]any{"allow_create_engine": false, "allow_fine_tuning": false,
					"allow_logprobs": false, "allow_sampling": false, "allow_search_indices": false,
					"allow_view": true, "created": 0, "group": nil, "id": "placeholder", "is_blocking": false,
					"object": "model_permission", "organization": "*"}},
			})
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": data, "object": "list"})
	}}}
	rs = append(rs, s.openAIWriteRoutes()[:2]...)
	nf := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) }
	return stack{routes: rs, notFound: nf, unauthorized: nf}
}

// --- Jan (0.5.x-0.6.0, cortex.cpp engine): /v1/models lists the
// cortex model.yml of every downloaded model (engine, ctx_len, ngl,
// status "downloaded", empty object and owned_by), as reported in
// janhq/jan issue #5318.

func janStack(s *server) stack {
	rs := []route{{method: "GET", path: "/v1/models", h: func(w http.ResponseWriter, _ *http.Request) {
		data := make([]any, 0, len(s.p.Models))
		for _, m := range s.p.Models {
			data = append(data, map[string]any{
				"id": m.ID, "model": m.ID, "name": m.ID, "object": "", "owned_by": "", "created": 15,
				"engine": "llama-cpp", "ctx_len": 4096, "ngl": 33, "max_tokens": 4096, "size": m.Size,
				"status": "downloaded", "files": []string{"models/cortex.so/" + m.ID + "/model.gguf"},
				"prompt_template": "{system_message}<|user|>{prompt}<|assistant|>",
			})
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": data, "object": "list"})
	}}}
	rs = append(rs, s.openAIWriteRoutes()...)
	nf := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) }
	return stack{routes: rs, notFound: nf, unauthorized: nf}
}

// --- Generic OpenAI-compatible server: the OpenAI API reference's
// /v1/models list and nothing distinctive.

func openaiStack(s *server) stack {
	rs := []route{{method: "GET", path: "/v1/models", h: func(w http.ResponseWriter, _ *http.Request) {
		data := make([]any, 0, len(s.p.Models))
		for _, m := range s.p.Models {
			data = append(data, map[string]any{"id": m.ID, "object": "model", "created": 1700000000, "owned_by": "organization-owner"})
		}
		writeJSON(w, http.StatusOK, openAIModelList(data))
	}}}
	rs = append(rs, s.openAIWriteRoutes()...)
	return stack{routes: rs,
		notFound: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"message": "Not Found", "type": "invalid_request_error"}})
		},
		unauthorized: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{
				"message": "Invalid API key", "type": "invalid_request_error", "code": "invalid_api_key"}})
		}}
}

// cppJSON is llama.cpp's res_ok/res_error Content-Type.
func cppJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	writeJSON(w, status, v)
}
