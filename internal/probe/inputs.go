package probe

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Bounds on the input files.
const (
	maxInputLine   = 1 << 20
	maxInputBytes  = 64 << 20
	maxCandidates  = 1000
	maxCanaries    = 1000
	maxTriggerLen  = 256
	maxCanaryBytes = 4 << 10
)

// ErrBadInput: a triggers or canaries file is not in a format probe reads.
var ErrBadInput = errors.New("bad input file")

// triggerKinds are the datascan finding kinds that carry a trigger.
var triggerKinds = map[string]bool{"backdoor_trigger": true, "instruction_backdoor": true, "summary": true}

// ReadTriggers reads backdoor candidates from the JSON Lines output of
// `llmfence datascan --format json`: the trigger of every backdoor_trigger,
// instruction_backdoor and summary record, deduplicated, in file order.
// Records of other kinds are skipped. Anything that is not such output is
// refused with the line that shows it. name labels errors.
func ReadTriggers(r io.Reader, name string) ([]TriggerCandidate, error) {
	var out []TriggerCandidate
	seen := map[string]bool{}
	err := eachJSONLine(r, name, func(n int, raw map[string]json.RawMessage) error {
		kind, err := stringField(raw, "kind")
		if err != nil || kind == "" {
			return fmt.Errorf("%s:%d: no \"kind\" field: this is not datascan output (llmfence datascan --format json)", name, n)
		}
		if !triggerKinds[kind] {
			return nil
		}
		t, err := stringField(raw, "trigger")
		if err != nil || strings.TrimSpace(t) == "" {
			if kind == "summary" {
				return nil // a summary of another kind
			}
			return fmt.Errorf("%s:%d: a %s record without a \"trigger\" string", name, n, kind)
		}
		if len(t) > maxTriggerLen {
			return fmt.Errorf("%s:%d: trigger longer than %d bytes", name, n, maxTriggerLen)
		}
		if !seen[t] {
			if len(out) >= maxCandidates {
				return fmt.Errorf("%s: more than %d distinct triggers", name, maxCandidates)
			}
			seen[t] = true
			out = append(out, TriggerCandidate{Text: t, Source: "triggers file"})
		}
		return nil
	})
	return out, err
}

// ReadCanaries reads memorisation tests: JSON Lines of {"prefix": ...,
// "secret": ...}, or the pii and secret findings of datascan output, whose
// evidence up to the redaction marker becomes a prefix to continue (the
// value itself was redacted, so any personal data of the finding's
// category in the answer counts).
func ReadCanaries(r io.Reader, name string) ([]CanarySpec, error) {
	var out []CanarySpec
	seen := map[string]bool{}
	err := eachJSONLine(r, name, func(n int, raw map[string]json.RawMessage) error {
		var c CanarySpec
		if kind, _ := stringField(raw, "kind"); kind != "" {
			if kind != "pii" && kind != "secret" {
				return nil
			}
			ev, err := stringField(raw, "evidence")
			if err != nil {
				return fmt.Errorf("%s:%d: a %s record without \"evidence\"", name, n, kind)
			}
			i := strings.Index(ev, "[REDACTED")
			if i < 0 {
				return nil
			}
			c.Prefix = strings.TrimSpace(ev[:i])
			c.Category, _ = stringField(raw, "category")
			if utf8.RuneCountInString(c.Prefix) < 8 {
				return nil // too little context to prompt with
			}
			c.Prefix += " "
		} else {
			p, perr := stringField(raw, "prefix")
			s, serr := stringField(raw, "secret")
			if perr != nil || serr != nil || strings.TrimSpace(p) == "" || strings.TrimSpace(s) == "" {
				return fmt.Errorf("%s:%d: want {\"prefix\": ..., \"secret\": ...} or datascan output", name, n)
			}
			c.Prefix, c.Secret = p, s
		}
		if len(c.Prefix)+len(c.Secret) > maxCanaryBytes {
			return fmt.Errorf("%s:%d: canary longer than %d bytes", name, n, maxCanaryBytes)
		}
		if k := c.Prefix + "\x00" + c.Secret; !seen[k] {
			if len(out) >= maxCanaries {
				return fmt.Errorf("%s: more than %d canaries", name, maxCanaries)
			}
			seen[k] = true
			out = append(out, c)
		}
		return nil
	})
	return out, err
}

// ParseCanary splits "--canary TEXT": the last word is the secret, the
// rest (with its trailing space) the prefix.
func ParseCanary(text string) (CanarySpec, error) {
	t := strings.TrimSpace(text)
	i := strings.LastIndexAny(t, " \t")
	if i <= 0 || i == len(t)-1 {
		return CanarySpec{}, fmt.Errorf("canary %q: want a prefix and a secret, e.g. \"the vault code is 491830266517\"", text)
	}
	return CanarySpec{Prefix: t[:i+1], Secret: t[i+1:]}, nil
}

// eachJSONLine calls fn for every non-empty line, which must be a JSON
// object; lines are at most maxInputLine bytes and the file at most
// maxInputBytes.
func eachJSONLine(r io.Reader, name string, fn func(n int, raw map[string]json.RawMessage) error) error {
	br := bufio.NewReaderSize(io.LimitReader(r, maxInputBytes+1), 64<<10)
	var total int64
	for n := 1; ; n++ {
		line, err := readLine(br, maxInputLine)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: %s:%d: %v", ErrBadInput, name, n, err)
		}
		total += int64(len(line))
		if total > maxInputBytes {
			return fmt.Errorf("%w: %s is larger than %d bytes", ErrBadInput, name, maxInputBytes)
		}
		if s := strings.TrimSpace(string(line)); s != "" {
			if !utf8.ValidString(s) {
				return fmt.Errorf("%w: %s:%d is not UTF-8 text", ErrBadInput, name, n)
			}
			var raw map[string]json.RawMessage
			if jerr := json.Unmarshal([]byte(s), &raw); jerr != nil || raw == nil {
				return fmt.Errorf("%w: %s:%d is not a JSON object (want JSON Lines, as datascan --format json writes)", ErrBadInput, name, n)
			}
			if ferr := fn(n, raw); ferr != nil {
				return fmt.Errorf("%w: %w", ErrBadInput, ferr)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

func stringField(raw map[string]json.RawMessage, k string) (string, error) {
	v, ok := raw[k]
	if !ok {
		return "", fmt.Errorf("no %s", k)
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", err
	}
	return s, nil
}
