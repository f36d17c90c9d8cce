package audit

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestUnitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`"OLLAMA_HOST=0.0.0.0" "OLLAMA_ORIGINS=*"`, []string{"OLLAMA_HOST=0.0.0.0", "OLLAMA_ORIGINS=*"}},
		{`A=1 B="two words" 'C=single q'`, []string{"A=1", "B=two words", "C=single q"}},
		{`/usr/bin/llama-server --host 0.0.0.0 -m "/models/a b.gguf"`, []string{"/usr/bin/llama-server", "--host", "0.0.0.0", "-m", "/models/a b.gguf"}},
		{`X=a\ b Y=c\"d`, []string{"X=a b", `Y=c"d`}},
		{`"unterminated`, []string{"unterminated"}},
		{``, nil},
	}
	for _, tt := range tests {
		if got := unitWords(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("unitWords(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestUnitStateResetsAndOrder(t *testing.T) {
	var u unitState
	u.apply([]byte("[Unit]\nEnvironment=IGNORED=1\n[Service]\nEnvironment=A=1 B=2\nExecStart=/bin/a\nUser=x\n"), "main")
	u.apply([]byte("[Service]\nEnvironment=\nEnvironment=C=3\nExecStart=\nExecStart=-/usr/local/bin/ollama serve\n"), "drop-in")
	if len(u.env) != 1 || u.env[0] != (envAssign{"C", "3", "drop-in"}) {
		t.Errorf("env after reset: %+v", u.env)
	}
	if !reflect.DeepEqual(u.execStart, []string{"/usr/local/bin/ollama", "serve"}) || u.user != "x" {
		t.Errorf("execStart %q user %q", u.execStart, u.user)
	}
	// Continuation lines and comments.
	var c unitState
	c.apply([]byte("[Service]\n# Environment=NO=1\n; Environment=NO=2\nEnvironment=A=1 \\\n  B=2\n"), "f")
	if len(c.env) != 2 || c.env[1].key != "B" {
		t.Errorf("continuation: %+v", c.env)
	}
}

func TestParseEnvFile(t *testing.T) {
	got := parseEnvFile([]byte("# c\n; c\nA=1\nB=\"two words\"\nC='x'\nbad line\n D = spaced \nE=\n"))
	want := [][2]string{{"A", "1"}, {"B", "two words"}, {"C", "x"}, {"D", "spaced"}, {"E", ""}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestUnitsFromFixtures reads the unit fixtures (testdata/units) as a
// machine: drop-ins override the unit, EnvironmentFile= is read (a missing
// optional one is fine), masked and non-runtime units are skipped, user
// units are found in home directories.
func TestUnitsFromFixtures(t *testing.T) {
	f := newFixture(t)
	f.copyTree("testdata/units", "")
	cat, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	want := func(argv []string) bool { s, h := cat.identify("", argv, ""); return s != nil && !h }
	units, notes := f.reader().Units(context.Background(), want)
	if len(notes) != 0 {
		t.Errorf("notes: %q", notes)
	}
	by := map[string]Unit{}
	for _, u := range units {
		key := u.Name
		if u.UserUnit {
			key = u.Owner + ":" + u.Name
		}
		by[key] = u
	}
	if len(by) != 3 {
		t.Fatalf("units %v, want ollama, vllm and alice's ollama (llama-server is masked, ssh is no runtime)", keys(by))
	}
	o := by["ollama.service"]
	if o.Env["OLLAMA_HOST"] != "0.0.0.0" || o.Env["OLLAMA_ORIGINS"] != "*" || o.Env["OLLAMA_MODELS"] != "/srv/ollama/models" || o.Env["OLLAMA_KEEP_ALIVE"] != "24h" {
		t.Errorf("ollama env %v", o.Env)
	}
	if !strings.Contains(o.EnvSource["OLLAMA_HOST"], "/etc/systemd/system/ollama.service.d/override.conf") || o.User != "ollama" {
		t.Errorf("ollama source %q user %q", o.EnvSource["OLLAMA_HOST"], o.User)
	}
	if len(o.DropIns) != 1 || o.Path != "/etc/systemd/system/ollama.service" {
		t.Errorf("ollama files %q %q", o.Path, o.DropIns)
	}
	v := by["vllm.service"]
	if v.Env["HF_HOME"] != "/srv/hf" || v.Env["VLLM_API_KEY"] != "sk-envfile-secret" || v.EnvSource["HF_HOME"] != "EnvironmentFile /etc/default/vllm" {
		t.Errorf("vllm env %v %v", v.Env, v.EnvSource)
	}
	if len(v.Notes) != 0 {
		t.Errorf("an optional missing EnvironmentFile must not be a note: %q", v.Notes)
	}
	a := by["alice:ollama.service"]
	if !a.UserUnit || a.Env["OLLAMA_HOST"] != "127.0.0.1:11500" {
		t.Errorf("alice's unit %+v", a)
	}
}

func keys[V any](m map[string]V) []string { return sortedKeys(m) }

func FuzzUnitFile(f *testing.F) {
	f.Add([]byte("[Service]\nEnvironment=\"A=1\" B=2\nExecStart=/usr/bin/ollama serve\nEnvironmentFile=-/etc/x\n"))
	f.Add([]byte("[Service]\nEnvironment=A=1 \\\n B='x y'\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var u unitState
		u.apply(data, "fuzz")
		if len(u.env) > maxUnitVars || len(u.env) > len(data) {
			t.Fatalf("%d assignments from %d bytes", len(u.env), len(data))
		}
		for _, a := range u.env {
			if a.key == "" || strings.Contains(a.key, "=") {
				t.Fatalf("bad key %q", a.key)
			}
		}
		for _, kv := range parseEnvFile(data) {
			if kv[0] == "" || strings.ContainsAny(kv[0], " \t=") {
				t.Fatalf("bad env-file key %q", kv[0])
			}
		}
	})
}
