package pickle

import "testing"

func TestEscapeDecoders(t *testing.T) {
	tests := []struct {
		name    string
		fn      func(string) (string, error)
		in, out string
		bad     bool
	}{
		{"plain", escapeDecode, "os", "os", false},
		{"hex", escapeDecode, `\x6fs`, "os", false},
		{"octal", escapeDecode, `\157s`, "os", false},
		{"quotes", escapeDecode, `a\'b\"c\\`, `a'b"c\`, false},
		{"unknown escape kept", escapeDecode, `\q`, `\q`, false},
		{"bad hex", escapeDecode, `\x6`, "", true},
		{"trailing backslash", escapeDecode, `os\`, "", true},
		{"raw plain", rawUnicodeEscapeDecode, "system", "system", false},
		{"raw u", rawUnicodeEscapeDecode, `\u006fs`, "os", false},
		{"raw U", rawUnicodeEscapeDecode, `\U0000006fs`, "os", false},
		{"raw even backslashes", rawUnicodeEscapeDecode, `\\u006f`, `\\u006f`, false},
		{"raw odd backslashes", rawUnicodeEscapeDecode, `\\\u006f`, `\\o`, false},
		{"raw latin1", rawUnicodeEscapeDecode, "\xe9", "é", false},
		{"raw truncated", rawUnicodeEscapeDecode, `\u00`, "", true},
		{"raw out of range", rawUnicodeEscapeDecode, `\U00110000`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.fn(tt.in)
			if (err != nil) != tt.bad || (!tt.bad && got != tt.out) {
				t.Fatalf("decode(%q) = %q, %v; want %q, error %t", tt.in, got, err, tt.out, tt.bad)
			}
		})
	}
}
