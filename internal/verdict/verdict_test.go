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
	c, err := LoadCatalogue([]byte(good), "X-")
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
		if _, err := LoadCatalogue([]byte(bad), "X-"); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}
