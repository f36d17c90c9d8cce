package verdict

import (
	"strings"
	"testing"
)

func TestWorst(t *testing.T) {
	for _, tc := range []struct {
		in   []Verdict
		want Verdict
	}{
		{nil, Clean},
		{[]Verdict{Clean, Suspicious}, Suspicious},
		{[]Verdict{Invalid, Suspicious}, Invalid},
		{[]Verdict{Suspicious, Malicious, Invalid}, Malicious},
	} {
		if got := Worst(tc.in...); got != tc.want {
			t.Errorf("Worst(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestLoadCatalogue(t *testing.T) {
	good := "version: 1\nfindings:\n  - {id: X-001, severity: high, verdict: malicious, title: t, why: w, fix: f}\n"
	c, err := LoadCatalogue("x.yaml", []byte(good), "X-")
	if err != nil {
		t.Fatal(err)
	}
	f := c.New("X-001", "detail", 12)
	if f.Verdict != Malicious || f.Severity != "high" || f.Offset != 12 || f.Title != "t" {
		t.Errorf("New = %+v", f)
	}
	for name, bad := range map[string]string{
		"no version":  "findings: []\n",
		"prefix":      strings.Replace(good, "X-001", "Y-001", 1),
		"duplicate":   good + "  - {id: X-001, severity: high, verdict: malicious, title: t, why: w, fix: f}\n",
		"severity":    strings.Replace(good, "high", "huge", 1),
		"verdict":     strings.Replace(good, "malicious", "evil", 1),
		"no fix":      strings.Replace(good, ", fix: f", "", 1),
		"stray field": strings.Replace(good, "fix: f", "fix: f, oops: 1", 1),
	} {
		if _, err := LoadCatalogue("x.yaml", []byte(bad), "X-"); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

func TestNotInspectedRanks(t *testing.T) {
	// Not inspected is never clean, and any real finding outranks it.
	if Worst(Clean, NotInspected) != NotInspected || Worst(NotInspected, Suspicious) != Suspicious {
		t.Error("not-inspected is mis-ranked")
	}
	for i := 1; i < len(All); i++ {
		if Worst(All[i-1], All[i]) != All[i] || !All[i].Known() {
			t.Errorf("All is not in rank order at %s", All[i])
		}
	}
	if Verdict("evil").Known() {
		t.Error("unknown verdict accepted")
	}
	c, err := LoadCatalogue("x.yaml", []byte("version: 1\nfindings:\n  - {id: X-001, severity: medium, verdict: suspicious, executes: true, title: t, why: w, fix: f}\n"), "X-")
	if err != nil {
		t.Fatal(err)
	}
	if f := c.New("X-001", "", -1); !f.Executes || !Executes([]Finding{{}, f}) || Executes([]Finding{{}}) {
		t.Errorf("executes not carried: %+v", f)
	}
}
