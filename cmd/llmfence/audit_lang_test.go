package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestAuditJSONLinesIgnoreLanguage: `audit --format json` writes the same
// bytes under --lang ja as under --lang en (only the time of the audit
// differs between two runs), and carries the messages its English notes,
// details and setting sources were written from.
func TestAuditJSONLinesIgnoreLanguage(t *testing.T) {
	root := auditRoot(t, true)
	when := regexp.MustCompile(`"audited_at":"[^"]*"`)
	var outs []string
	for _, lang := range []string{"en", "ja"} {
		code, out, errs := runLlmfence(t, nil, "--lang", lang, "audit", "--root", root, "--format", "json", "--fail-on", "none")
		if code != 0 && code != 1 {
			t.Fatalf("--lang %s: exit %d: %s", lang, code, errs)
		}
		outs = append(outs, when.ReplaceAllString(out, `"audited_at":"T"`))
	}
	if outs[0] != outs[1] {
		t.Errorf("JSON Lines differ with the language:\nen: %s\nja: %s", outs[0], outs[1])
	}
	for _, want := range []string{`"setting_source_msgs":{`, `"id":"audit.source.environment"`, `"detail_msg":{"id":"audit.detail.listening"`} {
		if !strings.Contains(outs[0], want) {
			t.Errorf("the audit's JSON Lines lack %s:\n%s", want, outs[0])
		}
	}
	if regexp.MustCompile(`[\p{Han}\p{Hiragana}\p{Katakana}]`).MatchString(outs[1]) {
		t.Errorf("Japanese in the JSON Lines under --lang ja:\n%s", outs[1])
	}
}
