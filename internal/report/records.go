package report

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Every list command's --format json is JSON Lines: one record per line,
// compact, in the order the table shows them, with no wrapping array or
// envelope, so `jq`, `grep` and line-by-line readers work on any of them
// and a long list streams. Each record type has a JSON Schema in
// docs/schemas/ (checked by this package's tests). Records never depend
// on the language or the terminal: English texts, RFC 3339 times in UTC,
// run IDs as strings of decimal digits.

// WriteJSONL writes records to w, one JSON object per line.
func WriteJSONL[T any](w io.Writer, records []T) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // prompts stay readable: < and > as they are
	for i := range records {
		if err := enc.Encode(&records[i]); err != nil {
			return fmt.Errorf("writing JSON lines: %w", err)
		}
	}
	return nil
}

// ListOptions tune the terminal tables of the list commands (runs,
// hosts, findings, keys, usage, captures).
type ListOptions struct {
	// Location is the time zone times are shown in; nil is the local
	// zone.
	Location *time.Location
	// Now is the current time (key status); zero means time.Now().
	Now time.Time
}

func (o ListOptions) loc() *time.Location {
	if o.Location != nil {
		return o.Location
	}
	return time.Local
}

func (o ListOptions) now() time.Time {
	if o.Now.IsZero() {
		return time.Now()
	}
	return o.Now
}

// when formats t for a table, or zero when t is unset.
func (o ListOptions) when(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.In(o.loc()).Format(time.DateTime)
}
