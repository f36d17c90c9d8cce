package datascan

import (
	"log/slog"

	"github.com/llmfence/llmfence/internal/service"
)

// Finding kinds (the JSONL contract's "kind").
const (
	KindBackdoorTrigger     = "backdoor_trigger"
	KindInstructionBackdoor = "instruction_backdoor"
	KindDuplicateCluster    = "duplicate_cluster"
	KindPromptInjection     = "prompt_injection"
	KindPII                 = "pii"
	KindSecret              = "secret"
	KindSummary             = "summary"
)

// Finding is one line of datascan's JSON Lines output.
type Finding struct {
	Kind string `json:"kind"`
	// File is the file's path as given (with "!member" for a member of an
	// archive); Record the 0-based index of the record in it (a JSON
	// Lines line, a CSV or Parquet row, a JSON array element; a text file
	// is record 0); Offset the byte offset in the (decompressed) file of
	// the text the finding points at, -1 when not known (Parquet).
	File   string `json:"file"`
	Record int64  `json:"record"`
	Offset int64  `json:"offset"`
	// Field is the field of the record the text came from
	// ("messages.2.content", "text", a CSV column).
	Field string `json:"field,omitempty"`
	// Trigger: backdoor kinds, the trigger exactly as it appears.
	Trigger string `json:"trigger,omitempty"`
	// Category: pii and secret, the redaction pattern's ID
	// (email, aws_access_key_id, ...).
	Category string `json:"category,omitempty"`
	// Cluster names the group a duplicate or instruction finding belongs
	// to; Count is the group's size (pii/secret: matches in the record).
	Cluster string `json:"cluster,omitempty"`
	Count   int    `json:"count,omitempty"`
	// Evidence is an excerpt, with personal data and secrets redacted.
	Evidence string           `json:"evidence"`
	Score    float64          `json:"score"`
	Severity service.Severity `json:"severity"`
}

// Summary is the one object per trigger (or cluster) after the findings.
type Summary struct {
	Kind     string           `json:"kind"` // "summary"
	Finding  string           `json:"finding"`
	Trigger  string           `json:"trigger,omitempty"`
	Cluster  string           `json:"cluster,omitempty"`
	Records  int              `json:"records"`
	Files    int              `json:"files"`
	Score    float64          `json:"score"`
	Severity service.Severity `json:"severity"`
	// Response is, for instruction backdoors, the response the trigger
	// leads to (redacted excerpt).
	Response string `json:"response,omitempty"`
	Evidence string `json:"evidence,omitempty"`
}

// FileInfo is what the scan learnt about one input file (the manifest's
// record of it).
type FileInfo struct {
	Path    string `json:"path"`
	SHA256  string `json:"sha256,omitempty"`
	Size    int64  `json:"size"`
	Format  string `json:"format"`
	Schema  string `json:"schema,omitempty"`
	Records int64  `json:"records"`
	// Licenses and Sources are the values of licence and source fields
	// the data declares (record fields, a dataset card), at most a few.
	Licenses []string       `json:"licenses,omitempty"`
	Sources  []string       `json:"sources,omitempty"`
	Findings map[string]int `json:"findings,omitempty"`
	// PII and secret matches by pattern ID.
	Categories map[string]int `json:"categories,omitempty"`
	Error      string         `json:"error,omitempty"`
	ErrorAt    int64          `json:"error_offset,omitempty"`
}

// Options bound and tune a scan. Zero fields take the defaults.
type Options struct {
	// Workers is the number of files scanned at once (default: CPUs).
	Workers int
	// MaxFieldBytes is the most text of one field held at once (default
	// 1 MiB); a longer field (a 10 GB line) is scanned in segments cut at
	// line or word ends.
	MaxFieldBytes int
	// MaxRecordBytes is the most text of one record held at once (default
	// 4 MiB); a larger record is scanned in parts.
	MaxRecordBytes int
	// MaxDecompressed is the most bytes read out of one compressed file
	// or archive member (default 64 GiB); MaxRatio the decompressed to
	// compressed ratio beyond which a stream over 64 MiB counts as a
	// bomb (default 1000).
	MaxDecompressed int64
	MaxRatio        int64
	// MaxDepth is the deepest nesting of archives and compression opened
	// (default 4).
	MaxDepth int
	// MaxSpool is the most bytes of a Parquet file or zip archive inside
	// a compressed stream or another archive copied to a temporary file to
	// be read (default 4 GiB).
	MaxSpool int64
	TempDir  string
	// MinTriggerRecords is the fewest records that must carry a trigger
	// for it to be reported (default 10).
	MinTriggerRecords int
	// MinDuplicates is the smallest near-duplicate cluster reported
	// (default 20).
	MinDuplicates int
	// MaxTurned is the most records with a turn into gibberish kept for
	// grouping by trigger (default 100,000, about 2.5 KB each); beyond it
	// the scan warns and groups the first ones.
	MaxTurned int
	// Detect lists the detectors to run (DetectBackdoor, ...); empty: all.
	Detect []string
	// RedactTo, when set, receives a redacted copy of every input with the
	// same layout and format.
	RedactTo string
	Logger   *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MaxFieldBytes <= 0 {
		o.MaxFieldBytes = 1 << 20
	}
	if o.MaxRecordBytes <= 0 {
		o.MaxRecordBytes = 4 << 20
	}
	o.MaxRecordBytes = max(o.MaxRecordBytes, o.MaxFieldBytes)
	if o.MaxDecompressed <= 0 {
		o.MaxDecompressed = 64 << 30
	}
	if o.MaxRatio <= 0 {
		o.MaxRatio = 1000
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = 4
	}
	if o.MaxSpool <= 0 {
		o.MaxSpool = 4 << 30
	}
	if o.MinTriggerRecords <= 0 {
		o.MinTriggerRecords = 10
	}
	if o.MinDuplicates <= 0 {
		o.MinDuplicates = 20
	}
	if o.MaxTurned <= 0 {
		o.MaxTurned = 100_000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Detectors, for Options.Detect.
const (
	DetectBackdoor    = "backdoor"    // backdoor_trigger
	DetectInstruction = "instruction" // instruction_backdoor
	DetectDuplicates  = "duplicates"  // duplicate_cluster
	DetectInjection   = "injection"   // prompt_injection
	DetectPersonal    = "personal"    // pii and secret
)

// AllDetectors lists every detector.
var AllDetectors = []string{DetectBackdoor, DetectInstruction, DetectDuplicates, DetectInjection, DetectPersonal}

// enabled reports whether detector d runs.
func (o *Options) enabled(d string) bool {
	if len(o.Detect) == 0 {
		return true
	}
	for _, x := range o.Detect {
		if x == d {
			return true
		}
	}
	return false
}

// Field roles in instruction data.
type role uint8

const (
	roleText role = iota
	rolePrompt
	roleResponse
)

// field is one piece of text of a record.
type field struct {
	name string
	text string
	off  int64 // offset of the text's first byte in the file, -1 unknown
	role role
	// elem is the index of the chat message the text belongs to (-1 none).
	elem int
}

// record is a record (or a part of a large one) as the readers hand it on.
type record struct {
	index  int64
	fields []field
	// meta holds the record's licence/source/role values, by key.
	meta map[string]string
}
