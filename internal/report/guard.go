package report

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"

	apikeys "github.com/llmfence/llmfence/internal/guard/keys"
	"github.com/llmfence/llmfence/internal/store"
)

// KeyRecord is one API key as `llmfence keys list --format json` prints
// it: the stored key (never its secret) and its status now.
type KeyRecord struct {
	apikeys.Key
	// Status is "active", "revoked" or "expired".
	Status string `json:"status"`
}

// KeyRecords pairs keys with their status at opts' time.
func KeyRecords(keys []apikeys.Key, opts ListOptions) []KeyRecord {
	now := opts.now()
	out := make([]KeyRecord, len(keys))
	for i, k := range keys {
		if k.Models == nil {
			k.Models = []string{}
		}
		out[i] = KeyRecord{Key: k, Status: k.Status(now)}
	}
	return out
}

// KeysTable writes API keys, one per row, as `llmfence keys list` shows
// them.
func KeysTable(w io.Writer, keys []apikeys.Key, opts ListOptions) error {
	g := gridWriter{}
	g.header("NAME", "ID", "STATUS", "CREATED", "EXPIRES", "LAST USED", "ADMIN", "CLOUD", "MODELS", "LIMITS")
	now := opts.now()
	for _, k := range keys {
		g.row(printable(k.Name), k.ID, k.Status(now), opts.when(k.Created, "-"), opts.when(k.Expires, "never"),
			opts.when(k.LastUsed, "never"), yesNo(k.Admin), yesNo(k.AllowCloud), clip(printable(ModelsText(k.Models)), 40),
			LimitsText(k.Limits))
	}
	return g.write(w, "keys table")
}

// DescribeKey writes a key's settings on three indented lines, as
// `llmfence keys create` confirms them.
func DescribeKey(w io.Writer, k apikeys.Key, opts ListOptions) error {
	_, err := fmt.Fprintf(w, "  models: %s\n  limits: %s\n  admin: %t  allow-cloud: %t  expires: %s\n",
		printable(ModelsText(k.Models)), LimitsText(k.Limits), k.Admin, k.AllowCloud, opts.when(k.Expires, "never"))
	return err
}

// ModelsText is a key's model globs, comma-separated, "(none)" for none.
func ModelsText(m []string) string {
	if len(m) == 0 {
		return "(none)"
	}
	return strings.Join(m, ",")
}

// LimitsText is a key's limits as "rpm=60 tpm=unlimited", "default tier"
// when none is set.
func LimitsText(l apikeys.Limits) string {
	var parts []string
	add := func(name string, v int64) {
		switch {
		case v > 0:
			parts = append(parts, name+"="+strconv.FormatInt(v, 10))
		case v < 0:
			parts = append(parts, name+"=unlimited")
		}
	}
	add("rpm", int64(l.RPM))
	add("tpm", int64(l.TPM))
	add("concurrent", int64(l.Concurrent))
	add("daily", l.Daily)
	add("monthly", l.Monthly)
	if len(parts) == 0 {
		return "default tier"
	}
	return strings.Join(parts, " ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// UsageTable writes what each key used, one key per row, and a TOTAL
// row, as `llmfence usage` shows it.
func UsageTable(w io.Writer, sums []store.UsageSummary) error {
	g := gridWriter{}
	g.header("KEY", "ID", "REQUESTS", "PROMPT", "COMPLETION", "TOTAL TOKENS", "ERRORS")
	var t store.UsageSummary
	for _, s := range sums {
		name, id := printable(s.KeyName), s.KeyID
		if name == "" && id == "" {
			name, id = "(no key)", "-"
		}
		g.row(name, id, i64(s.Requests), i64(s.PromptTokens), i64(s.CompletionTokens),
			i64(s.PromptTokens+s.CompletionTokens), i64(s.Errors))
		t.Requests += s.Requests
		t.PromptTokens += s.PromptTokens
		t.CompletionTokens += s.CompletionTokens
		t.Errors += s.Errors
	}
	g.row("TOTAL", "", i64(t.Requests), i64(t.PromptTokens), i64(t.CompletionTokens),
		i64(t.PromptTokens+t.CompletionTokens), i64(t.Errors))
	return g.write(w, "usage table")
}

func i64(n int64) string { return strconv.FormatInt(n, 10) }

// CaptureRecord is one capture as `llmfence captures --format json`
// prints it: the whole stored (redacted) text.
type CaptureRecord = store.Capture

// CapturesTable writes captures, one per row with one-line excerpts of
// the prompt and the response, as `llmfence captures` shows them.
func CapturesTable(w io.Writer, cs []store.Capture, opts ListOptions) error {
	g := gridWriter{}
	g.header("TIME", "KEY", "ROUTE", "MODEL", "STATUS", "REDACTED", "PROMPT", "RESPONSE")
	for _, c := range cs {
		name := c.KeyName
		if name == "" {
			name = "(no key)"
		}
		g.row(opts.when(c.Time, "-"), Excerpt(name, 20), Excerpt(c.Route, 30), dash(Excerpt(c.Model, 30)),
			strconv.Itoa(c.Status), RedactionsText(c.Redactions),
			Excerpt(c.Prompt, 50)+cutMark(c.PromptTruncated), Excerpt(c.Response, 50)+cutMark(c.ResponseTruncated))
	}
	return g.write(w, "captures table")
}

// Excerpt renders stored text on one line of at most n terminal
// columns: control and format characters (terminal escapes,
// bidirectional overrides) that came from clients are shown as '·',
// white space is collapsed.
func Excerpt(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			return ' '
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar:
			return '·'
		}
		return r
	}, s)
	return clip(s, n)
}

func cutMark(truncated bool) string {
	if truncated {
		return " [cut]"
	}
	return ""
}

// RedactionsText renders redaction counts as "email:2,jwt:1" ("-" for
// none).
func RedactionsText(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for i, id := range ids {
		ids[i] = fmt.Sprintf("%s:%d", printable(id), m[id])
	}
	return strings.Join(ids, ",")
}

// UsersTable writes the console's users, one per row, as `llmfence users
// list` shows them.
func UsersTable(w io.Writer, users []store.User, opts ListOptions) error {
	g := gridWriter{}
	g.header("NAME", "ROLE", "STATE", "LAST SIGN-IN")
	for _, u := range users {
		state, last := "active", "never"
		if u.Disabled {
			state = "disabled"
		}
		if u.LastLogin != nil {
			last = opts.when(*u.LastLogin, "never")
		}
		g.row(printable(u.Name), u.Role, state, last)
	}
	return g.write(w, "users table")
}
