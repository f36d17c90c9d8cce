package refusal

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"
)

type labelled struct {
	ID       string `json:"id"`
	Lang     string `json:"lang"`
	Prompt   string `json:"prompt"`
	Response string `json:"response"`
	Label    string `json:"label"`
}

func readSet(t *testing.T, path string) []labelled {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []labelled
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l labelled
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, l)
	}
	return out
}

func TestDevMistakes(t *testing.T) {
	d, err := New()
	if err != nil {
		t.Fatal(err)
	}
	wrong := 0
	set := readSet(t, "testdata/dev.jsonl")
	for _, l := range set {
		r := d.Detect(l.Response)
		if r.Verdict != l.Label {
			wrong++
			t.Logf("%s want %s got %s (%s %q / %s): %s", l.ID, l.Label, r.Verdict, r.Rule, r.Evidence, r.Pivot, l.Response)
		}
	}
	t.Logf("%d of %d wrong", wrong, len(set))
}
