package version

import "testing"

func TestUserAgent(t *testing.T) {
	v := String()
	for contact, want := range map[string]string{
		"":                           "llmfence/" + v,
		"  ":                         "llmfence/" + v,
		"mailto:sec@example.org":     "llmfence/" + v + " (+mailto:sec@example.org)",
		" https://example.org/scan ": "llmfence/" + v + " (+https://example.org/scan)",
	} {
		if got := UserAgent(contact); got != want {
			t.Errorf("UserAgent(%q) = %q, want %q", contact, got, want)
		}
	}
	if v == "" {
		t.Error("String() is empty")
	}
}
