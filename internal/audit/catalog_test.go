package audit

import (
	"strings"
	"testing"
)

func catalog(t *testing.T) *Catalog {
	t.Helper()
	c, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestIdentifyEachRuntime gives every catalogue entry command lines it must
// recognise (as server or helper) and look-alikes it must not.
func TestIdentifyEachRuntime(t *testing.T) {
	c := catalog(t)
	type cmd struct {
		exe, cwd string
		argv     []string
	}
	tests := []struct {
		id      string
		servers []cmd
		helpers []cmd
		not     []cmd
	}{
		{id: "ollama",
			servers: []cmd{{exe: "/usr/local/bin/ollama", argv: []string{"/usr/local/bin/ollama", "serve"}}, {argv: []string{"ollama", "serve"}},
				{argv: []string{"/usr/bin/env", "-u", "X", "OLLAMA_HOST=0.0.0.0", "ollama", "serve"}}},
			helpers: []cmd{{argv: []string{"/usr/local/bin/ollama", "runner", "--model", "/x", "--port", "40111"}}, {argv: []string{"/tmp/ollama123/runners/cuda_v12/ollama_llama_server", "--model", "x"}}},
			not:     []cmd{{argv: []string{"ollama", "run", "llama3"}}, {argv: []string{"ollama", "list"}}, {argv: []string{"ollama"}}}},
		{id: "llamacpp",
			servers: []cmd{{argv: []string{"/opt/llama.cpp/build/bin/llama-server", "-m", "m.gguf", "--host", "0.0.0.0"}}},
			not:     []cmd{{argv: []string{"llama-cli", "-m", "m.gguf"}}}},
		{id: "vllm",
			servers: []cmd{
				{exe: "/usr/bin/python3.12", argv: []string{"/opt/venv/bin/python3", "/opt/venv/bin/vllm", "serve", "Qwen/Qwen2.5-7B"}},
				{argv: []string{"python3", "-m", "vllm.entrypoints.openai.api_server", "--model", "x"}},
				{argv: []string{"python", "-u", "-m", "vllm.entrypoints.api_server"}},
			},
			not: []cmd{{argv: []string{"python3", "/opt/venv/bin/vllm", "bench", "latency"}}, {argv: []string{"python3", "-c", "import vllm"}}}},
		{id: "sglang",
			servers: []cmd{{argv: []string{"python3", "-m", "sglang.launch_server", "--model-path", "x"}}},
			not:     []cmd{{argv: []string{"python3", "-m", "sglang.bench_serving"}}}},
		{id: "tgi",
			servers: []cmd{{argv: []string{"text-generation-launcher", "--model-id", "x"}}},
			helpers: []cmd{{argv: []string{"text-generation-router", "--port", "80"}}, {argv: []string{"/opt/conda/bin/python3.11", "/opt/conda/bin/text-generation-server", "serve", "x"}}}},
		{id: "localai",
			servers: []cmd{{argv: []string{"/usr/bin/local-ai"}}, {argv: []string{"local-ai", "run", "--address", ":8080"}}},
			not:     []cmd{{argv: []string{"local-ai", "models", "list"}}}},
		{id: "lmstudio",
			servers: []cmd{{exe: "/tmp/.mount_LM-StuAbc/lm-studio", argv: []string{"/home/a/Apps/LM-Studio-0.3.5-2-x64.AppImage"}}, {argv: []string{"/home/a/.lmstudio/llmster/llmster"}}},
			not:     []cmd{{argv: []string{"lms", "server", "start"}}}},
		{id: "text-generation-webui",
			servers: []cmd{{argv: []string{"python", "server.py", "--listen", "--api"}, cwd: "/home/a/text-generation-webui"},
				{argv: []string{"/home/a/text-generation-webui/installer_files/env/bin/python", "/home/a/text-generation-webui/server.py"}}},
			not: []cmd{{argv: []string{"python", "server.py"}, cwd: "/srv/flask-app"}}},
		{id: "koboldcpp",
			servers: []cmd{{argv: []string{"./koboldcpp-linux-x64-cuda1210", "--model", "m.gguf"}}, {argv: []string{"python3", "koboldcpp.py", "--model", "m.gguf"}}}},
		{id: "jan",
			servers: []cmd{{argv: []string{"/opt/Jan/jan"}}, {argv: []string{"/home/a/Jan_0.6.1_amd64.AppImage"}}},
			not:     []cmd{{argv: []string{"janitor"}}}},
		{id: "gpt4all",
			servers: []cmd{{argv: []string{"/home/a/gpt4all/bin/chat"}}, {argv: []string{"/usr/bin/gpt4all"}}},
			not:     []cmd{{argv: []string{"/usr/bin/chat"}}}},
		{id: "open-webui",
			servers: []cmd{{argv: []string{"/opt/venv/bin/python3", "/opt/venv/bin/open-webui", "serve"}},
				{argv: []string{"/usr/local/bin/python3", "/usr/local/bin/uvicorn", "open_webui.main:app", "--host", "0.0.0.0", "--port", "8080"}}}},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.id] = true
		for _, c2 := range tt.servers {
			if spec, helper := c.identify(c2.exe, c2.argv, c2.cwd); spec == nil || spec.ID != tt.id || helper {
				t.Errorf("%s: %q not identified as its server (got %v helper=%v)", tt.id, c2.argv, specID(spec), helper)
			}
		}
		for _, c2 := range tt.helpers {
			if spec, helper := c.identify(c2.exe, c2.argv, c2.cwd); spec == nil || spec.ID != tt.id || !helper {
				t.Errorf("%s: %q not identified as its helper (got %v helper=%v)", tt.id, c2.argv, specID(spec), helper)
			}
		}
		for _, c2 := range tt.not {
			if spec, _ := c.identify(c2.exe, c2.argv, c2.cwd); spec != nil {
				t.Errorf("%s: look-alike %q identified as %s", tt.id, c2.argv, spec.ID)
			}
		}
	}
	for _, r := range c.Runtimes {
		if !covered[r.ID] {
			t.Errorf("runtime %s has no identification test", r.ID)
		}
	}
}

func specID(s *RuntimeSpec) string {
	if s == nil {
		return "nothing"
	}
	return s.ID
}

func TestParseBindFollowsOllama(t *testing.T) {
	tests := []struct {
		in, syntax string
		host       string
		port       int
	}{
		{"", "ollama", "127.0.0.1", 11434},
		{"0.0.0.0", "ollama", "", 11434},
		{"0.0.0.0:8080", "ollama", "", 8080},
		{"  '0.0.0.0:9'  ", "ollama", "", 9},
		{"http://0.0.0.0", "ollama", "", 80},
		{"https://example.com", "ollama", "example.com", 443},
		{"http://192.0.2.5:11434/path", "ollama", "192.0.2.5", 11434},
		{"[::]:11434", "ollama", "", 11434},
		{"::", "ollama", "", 11434},
		{"127.0.0.1:99999", "ollama", "127.0.0.1", 11434},
		{":8080", "hostport", "", 8080},
		{"127.0.0.1:8080", "hostport", "127.0.0.1", 8080},
		{"[::1]:8080", "hostport", "::1", 8080},
	}
	for _, tt := range tests {
		h, p, err := parseBind(tt.in, tt.syntax)
		if err != nil || h != tt.host || p != tt.port {
			t.Errorf("parseBind(%q, %s) = %q, %d, %v; want %q, %d", tt.in, tt.syntax, h, p, err, tt.host, tt.port)
		}
	}
	if _, _, err := parseBind("8080", "hostport"); err == nil {
		t.Errorf("a bare port is not host:port")
	}
	for _, s := range []struct{ h, scope string }{{"", scopeAll}, {"localhost", scopeLoopback}, {"127.0.0.2", scopeLoopback}, {"::1", scopeLoopback}, {"203.0.113.3", scopeNetwork}, {"gpu01.internal", scopeNetwork}} {
		if got := hostScope(s.h); got != s.scope {
			t.Errorf("hostScope(%q) = %s, want %s", s.h, got, s.scope)
		}
	}
}

func TestDeriveSettings(t *testing.T) {
	c := catalog(t)
	get := func(id string) *RuntimeSpec { s, _ := c.Runtime(id); return s }
	ollama := get("ollama")
	vals := readEnvSettings(ollama, map[string]string{
		"OLLAMA_HOST": "0.0.0.0:11500", "OLLAMA_ORIGINS": "https://a.example,*", "OLLAMA_MODELS": "/srv/models",
		"OLLAMA_NO_CLOUD": "1", "OLLAMA_API_KEY": "secret-value", "PATH": "/bin", "HTTPS_PROXY": "http://user:pw@proxy.example:3128",
	}, fromEnvironment)
	f, err := derive(ollama, vals, "/")
	if err != nil {
		t.Fatal(err)
	}
	if f.bindHost != "" || f.bindPort != 11500 || !f.originsAny || !f.cloudOff || len(f.models) != 1 || f.models[0].path != "/srv/models" {
		t.Errorf("ollama facts %+v", f)
	}
	shown := map[string]string{}
	for _, v := range vals {
		shown[v.name] = v.shown()
	}
	if _, ok := shown["PATH"]; ok {
		t.Errorf("unrelated variables must not be read: %v", shown)
	}
	if shown["OLLAMA_API_KEY"] != "(set; value not shown)" || strings.Contains(shown["HTTPS_PROXY"], "pw") {
		t.Errorf("secrets shown: %v", shown)
	}

	vllm := get("vllm")
	argv := []string{"python3", "-m", "vllm.entrypoints.openai.api_server", "--port", "8001", "--api-key=abc", "--allowed-origins", `["https://x.example"]`}
	f, _ = derive(vllm, readFlagSettings(vllm, argv), "/")
	if f.bindHost != "" || f.bindPort != 8001 || !f.authSet || f.originsAny {
		t.Errorf("vllm facts %+v (default host is every interface; explicit origins replace the * default)", f)
	}
	if got := redactArgv(vllm, argv); strings.Contains(strings.Join(got, " "), "abc") {
		t.Errorf("secret flag value kept: %q", got)
	}
	other := []string{"vllm", "serve", "m", "--hf-token", "hf_secret", "--db-password=pw1", "--tokenizer", "t", "--port", "8000"}
	got := strings.Join(redactArgv(vllm, other), " ")
	if strings.Contains(got, "hf_secret") || strings.Contains(got, "pw1") || !strings.Contains(got, "--port 8000") || !strings.Contains(got, "--tokenizer t") {
		t.Errorf("credential-looking flags: %q", got)
	}
	f, _ = derive(vllm, readFlagSettings(vllm, []string{"vllm", "serve", "m", "--host", "127.0.0.1"}), "/")
	if hostScope(f.bindHost) != scopeLoopback || !f.originsAny || !f.originsDefault {
		t.Errorf("vllm --host 127.0.0.1: %+v", f)
	}

	tg := get("text-generation-webui")
	f, _ = derive(tg, readFlagSettings(tg, []string{"python", "server.py", "--listen", "--share", "--listen-port", "7000"}), "/x")
	if f.bindHost != "" || f.bindPort != 7000 || len(f.public) != 1 || f.public[0] != "--share" {
		t.Errorf("textgen facts %+v", f)
	}
	la := get("localai")
	f, _ = derive(la, append(readEnvSettings(la, map[string]string{"LOCALAI_ADDRESS": "127.0.0.1:9090"}, fromEnvironment),
		readFlagSettings(la, []string{"local-ai", "run", "--models-path", "models"})...), "/srv/localai")
	if f.bindHost != "127.0.0.1" || f.bindPort != 9090 || len(f.models) != 1 || f.models[0].path != "/srv/localai/models" {
		t.Errorf("localai facts %+v", f)
	}
	ow := get("open-webui")
	f, _ = derive(ow, readEnvSettings(ow, map[string]string{"WEBUI_AUTH": "False"}, fromEnvironment), "/")
	if f.authSet || !f.authOff {
		t.Errorf("WEBUI_AUTH=False must switch its login off: %+v", f)
	}
	f, _ = derive(ow, nil, "/")
	if !f.authSet {
		t.Errorf("Open WebUI has its own login by default: %+v", f)
	}
}

func TestParseCatalogRefusesBadData(t *testing.T) {
	good := string(runtimesYAML)
	tests := []struct{ name, data, want string }{
		{"unknown field", strings.Replace(good, "    name: Ollama\n", "    name: Ollama\n    nmae: x\n", 1), "nmae"},
		{"no version", strings.Replace(good, "version: 1\n", "version: 0\n", 1), "missing version"},
		{"duplicate id", strings.Replace(good, "id: llamacpp", "id: ollama", 1), "duplicate id"},
		{"bad role", strings.Replace(good, "role: cloud_off", "role: cloudy", 1), "unknown role"},
		{"bad layout", strings.Replace(good, "layout: files\n    home: [.local", "layout: heap\n    home: [.local", 1), "unknown layout"},
		{"unknown store", strings.Replace(good, "stores: [lmstudio]", "stores: [lmstudioo]", 1), "unknown store"},
		{"escaping path", strings.Replace(good, "home: [.cache/llama.cpp]", "home: [../../etc]", 1), "must be relative"},
		{"bad bind", strings.Replace(good, `default_bind: "127.0.0.1:11434"`, `default_bind: "11434"`, 1), "default_bind"},
		{"bad glob", strings.Replace(good, "programs: [llama-server]", "programs: [\"llama[\"]", 1), "glob"},
	}
	for _, tt := range tests {
		if tt.data == good {
			t.Fatalf("%s: replacement did not apply", tt.name)
		}
		_, err := ParseCatalog("runtimes.yaml", []byte(tt.data))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}

func FuzzParseBind(f *testing.F) {
	for _, s := range []string{"0.0.0.0", "http://[::]:80/x", ":8080", "'127.0.0.1:1'", "https://h", "[::1]:99999"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, ollama bool) {
		syntax := "hostport"
		if ollama {
			syntax = "ollama"
		}
		h, p, err := parseBind(s, syntax)
		if ollama && err != nil {
			t.Fatalf("OLLAMA_HOST never fails to parse (Ollama falls back to defaults): %v", err)
		}
		if err == nil && (p < 0 || p > 65535) {
			t.Fatalf("port %d from %q", p, s)
		}
		_ = hostScope(h)
	})
}
