package store

import (
	"context"
	"time"
)

// Capture is one prompt and response that `llmfence guard` stored (only
// with capture enabled). Prompt and Response are stored as given: the
// guard redacts them before (internal/redact), and Redactions counts what
// was replaced, per pattern ID.
type Capture struct {
	Time     time.Time `json:"time"`
	KeyID    string    `json:"key_id,omitempty"`
	KeyName  string    `json:"key_name,omitempty"`
	ClientIP string    `json:"client_ip,omitempty"`
	Route    string    `json:"route"` // the normalised path
	Model    string    `json:"model,omitempty"`
	Status   int       `json:"status"` // HTTP status sent to the client
	Prompt   string    `json:"prompt"`
	Response string    `json:"response"`
	// Redactions counts the replacements per redaction pattern ID, e.g.
	// {"email": 2}.
	Redactions map[string]int `json:"redactions,omitempty"`
	// PromptTruncated, ResponseTruncated: the text was cut to the
	// configured size.
	PromptTruncated   bool `json:"prompt_truncated,omitempty"`
	ResponseTruncated bool `json:"response_truncated,omitempty"`
	// RedactorVersion is the version of the redaction patterns applied.
	RedactorVersion int `json:"redactor_version"`
}

// CaptureFilter narrows capture queries, like UsageFilter. The zero value
// matches everything.
type CaptureFilter struct {
	// Since keeps captures at or after this time; zero means no bound.
	Since time.Time
	// Until keeps captures before this time; zero means no bound.
	Until time.Time
	// Key keeps captures of one key, given by name or by ID.
	Key string
	// Limit caps the result (newest first); <= 0 means no cap.
	Limit int
}

// CaptureStore keeps captured prompts and responses. Implementations are
// safe for concurrent use.
type CaptureStore interface {
	// AppendCaptures stores a batch in one transaction: when it returns
	// nil every capture is committed; on error none is. A capture without
	// a time gets the store's clock.
	AppendCaptures(ctx context.Context, cs []Capture) error
	// QueryCaptures returns matching captures, newest first.
	QueryCaptures(ctx context.Context, f CaptureFilter) ([]Capture, error)
	// PruneCaptures deletes the captures older than before (a capture at
	// exactly before is kept) and returns how many it deleted.
	PruneCaptures(ctx context.Context, before time.Time) (int64, error)
}
