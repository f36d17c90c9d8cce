package vulndb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Record is one OSV record. Raw keeps the bytes it was read from, so a
// record is stored and exported exactly as its source wrote it.
type Record struct {
	SchemaVersion    string          `json:"schema_version,omitempty"`
	ID               string          `json:"id"`
	Modified         time.Time       `json:"modified"`
	Published        *time.Time      `json:"published,omitempty"`
	Withdrawn        *time.Time      `json:"withdrawn,omitempty"`
	Aliases          []string        `json:"aliases,omitempty"`
	Summary          string          `json:"summary,omitempty"`
	Details          string          `json:"details,omitempty"`
	Severity         []Severity      `json:"severity,omitempty"`
	Affected         []Affected      `json:"affected,omitempty"`
	References       []Reference     `json:"references,omitempty"`
	DatabaseSpecific json.RawMessage `json:"database_specific,omitempty"`

	// Raw is the record as read.
	Raw json.RawMessage `json:"-"`
	// Notes is llmfence's annotation (database_specific.llmfence), if any.
	Notes *Notes `json:"-"`
}

// Severity is one OSV severity entry (a CVSS vector).
type Severity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

// Affected is one affected package of a record.
type Affected struct {
	Package          *Package        `json:"package,omitempty"`
	Ranges           []Range         `json:"ranges,omitempty"`
	Versions         []string        `json:"versions,omitempty"`
	DatabaseSpecific json.RawMessage `json:"database_specific,omitempty"`
}

// Package names a package in an ecosystem.
type Package struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	PURL      string `json:"purl,omitempty"`
}

// Range is one OSV range: a type and ordered events.
type Range struct {
	Type   string  `json:"type"`
	Repo   string  `json:"repo,omitempty"`
	Events []Event `json:"events"`
}

// Event is one range event; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// Reference is one OSV reference.
type Reference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// Notes is llmfence's annotation of a record, kept in
// database_specific.llmfence.
type Notes struct {
	// Severity is the severity llmfence reports: low, medium, high or
	// critical.
	Severity string `json:"severity"`
	// Score is the base score the severity comes from ("9.8"), empty when
	// no verified score exists; ScoreVector its vector and ScoreSource who
	// assigned it.
	Score       string `json:"score,omitempty"`
	ScoreVector string `json:"score_vector,omitempty"`
	ScoreSource string `json:"score_source"`
	// Source says where the affected ranges were checked.
	Source string `json:"source"`
	// Verified is true when the ranges were checked against Source; only
	// verified records claim a version.
	Verified bool `json:"verified"`
	// Advisory is the URL reports link to.
	Advisory string `json:"advisory"`
	// Note carries caveats: preconditions, disagreements between sources.
	Note string `json:"note,omitempty"`
}

// Range types and event kinds.
const (
	RangeSemver    = "SEMVER"
	RangeEcosystem = "ECOSYSTEM"
	RangeGit       = "GIT"
)

// ParseRecord reads one OSV record. Unknown fields are allowed (records
// come from other databases and newer schema versions); the fields llmfence
// relies on are checked: an id, a modified time, and for every range a
// known type, at least one event, and events with exactly one field.
// The llmfence annotation, when present, is decoded strictly.
func ParseRecord(b []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("not an OSV record: %w", err)
	}
	r.Raw = append(json.RawMessage(nil), bytes.TrimSpace(b)...)
	if strings.TrimSpace(r.ID) == "" {
		return nil, errors.New("OSV record without an id")
	}
	if r.Modified.IsZero() && !bytes.Contains(b, []byte(`"modified"`)) {
		return nil, fmt.Errorf("OSV record %s: no modified time", r.ID)
	}
	if len(r.ID) > 128 {
		return nil, fmt.Errorf("OSV record id too long (%d bytes)", len(r.ID))
	}
	for i, a := range r.Affected {
		for j, rg := range a.Ranges {
			switch rg.Type {
			case RangeSemver, RangeEcosystem, RangeGit:
			default:
				return nil, fmt.Errorf("OSV record %s: affected[%d].ranges[%d]: unknown range type %q", r.ID, i, j, rg.Type)
			}
			if len(rg.Events) == 0 {
				return nil, fmt.Errorf("OSV record %s: affected[%d].ranges[%d]: no events", r.ID, i, j)
			}
			hasIntro := false
			for k, e := range rg.Events {
				n := 0
				for _, s := range []string{e.Introduced, e.Fixed, e.LastAffected, e.Limit} {
					if s != "" {
						n++
					}
				}
				if n != 1 {
					return nil, fmt.Errorf("OSV record %s: affected[%d].ranges[%d].events[%d]: want exactly one of introduced, fixed, last_affected, limit", r.ID, i, j, k)
				}
				if e.Introduced != "" {
					hasIntro = true
				}
			}
			if !hasIntro {
				return nil, fmt.Errorf("OSV record %s: affected[%d].ranges[%d]: no introduced event", r.ID, i, j)
			}
		}
	}
	if len(r.DatabaseSpecific) > 0 {
		var ds map[string]json.RawMessage
		if err := json.Unmarshal(r.DatabaseSpecific, &ds); err == nil {
			if raw, ok := ds["llmfence"]; ok {
				dec := json.NewDecoder(bytes.NewReader(raw))
				dec.DisallowUnknownFields()
				var n Notes
				if err := dec.Decode(&n); err != nil {
					return nil, fmt.Errorf("OSV record %s: database_specific.llmfence: %w", r.ID, err)
				}
				r.Notes = &n
			}
		}
	}
	return &r, nil
}

// ids returns the record's ID and aliases.
func (r *Record) ids() []string {
	return append([]string{r.ID}, r.Aliases...)
}

// ghsaSeverity returns the GitHub advisory database's severity
// (database_specific.severity: LOW, MODERATE, HIGH, CRITICAL), if any.
func (r *Record) ghsaSeverity() string {
	if len(r.DatabaseSpecific) == 0 {
		return ""
	}
	var ds struct {
		Severity string `json:"severity"`
	}
	if json.Unmarshal(r.DatabaseSpecific, &ds) != nil {
		return ""
	}
	switch strings.ToUpper(ds.Severity) {
	case "LOW":
		return "low"
	case "MODERATE", "MEDIUM":
		return "medium"
	case "HIGH":
		return "high"
	case "CRITICAL":
		return "critical"
	}
	return ""
}
