package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/llmfence/llmfence/internal/service"
)

// JSONLinesWriter streams services as JSON Lines: one scan record per
// line (ScanRecord: the service JSON contract and the run it belongs to),
// written as each result arrives. It is safe for concurrent use; each
// line is written whole.
type JSONLinesWriter struct {
	mu    sync.Mutex
	w     io.Writer
	n     int
	err   error
	runID string
}

// ScanRecord is one line of `llmfence scan --format json`: the run's ID
// (a string of decimal digits, as `llmfence runs` prints it) and every
// field of the service (internal/service's JSON contract).
type ScanRecord struct {
	RunID string `json:"run_id"`
	service.Service
}

// SetRunID names the run the following services belong to. A scan
// learns its run ID when the store records the run, before the first
// service is found.
func (j *JSONLinesWriter) SetRunID(id string) {
	j.mu.Lock()
	j.runID = id
	j.mu.Unlock()
}

// JSONLines returns a writer that streams services to w.
func JSONLines(w io.Writer) *JSONLinesWriter {
	return &JSONLinesWriter{w: w}
}

// Write appends one service as a line. After a write error every later
// call returns that error.
func (j *JSONLinesWriter) Write(svc *service.Service) error {
	if svc == nil {
		return nil
	}
	j.mu.Lock()
	runID := j.runID
	j.mu.Unlock()
	line, err := json.Marshal(ScanRecord{RunID: runID, Service: normalise(*svc)})
	if err != nil {
		return fmt.Errorf("encoding %s as JSON: %w", svc.Key(), err)
	}
	line = append(line, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	if _, err := j.w.Write(line); err != nil {
		j.err = fmt.Errorf("writing JSON lines: %w", err)
		return j.err
	}
	j.n++
	return nil
}

// Count returns how many services were written.
func (j *JSONLinesWriter) Count() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.n
}

// normalise makes list fields empty lists rather than null and fills an
// unset risk, so scripts can iterate without null checks.
func normalise(s service.Service) service.Service {
	if s.Models == nil {
		s.Models = []service.Model{}
	}
	if s.Findings == nil {
		s.Findings = []service.Finding{}
	}
	models := make([]service.Model, len(s.Models))
	for i, m := range s.Models {
		if m.SystemPromptCategories == nil {
			m.SystemPromptCategories = []string{}
		}
		models[i] = m
	}
	s.Models = models
	if s.Risk == "" {
		s.Risk = service.SeverityNone
	}
	return s
}
