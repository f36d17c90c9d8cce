package console

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/llmfence/llmfence/internal/store"
)

// exportMax bounds one export (rows); larger inventories page with
// ?offset=.
const exportMax = 1_000_000

// csvSafe keeps a spreadsheet from reading a cell as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// apiExport streams services or findings as CSV or JSON Lines, page by
// page from the store (never the whole table in memory).
func (s *Server) apiExport(w http.ResponseWriter, r *http.Request, c *call) error {
	what, format := r.PathValue("what"), r.PathValue("format")
	if (what != "services" && what != "findings") || (format != "csv" && format != "jsonl") {
		return errStatus(http.StatusNotFound, "export services or findings as csv or jsonl")
	}
	ctype := "text/csv; charset=utf-8"
	if format == "jsonl" {
		ctype = "application/x-ndjson"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", `attachment; filename="llmfence-`+what+`.`+format+`"`)
	cw := csv.NewWriter(w)
	enc := json.NewEncoder(w)
	n := 0
	emit := func(row []string, v any) error {
		n++
		if format == "csv" {
			for i := range row {
				row[i] = csvSafe(row[i])
			}
			return cw.Write(row)
		}
		return enc.Encode(v)
	}
	off := 0
	if what == "services" {
		q, err := serviceQuery(r)
		if err != nil {
			return err
		}
		if format == "csv" {
			cw.Write([]string{"id", "fingerprint", "host", "port", "hostname", "product", "version", "auth", "risk", "state", "open_findings", "first_seen", "last_seen", "owner", "tags"})
		}
		for n < exportMax {
			q.Page = store.Page{Limit: store.MaxPage, Offset: off}
			items, more, err := s.st.ListServices(r.Context(), q)
			if err != nil {
				return err
			}
			for _, v := range items {
				if err := emit([]string{strconv.FormatInt(v.ID, 10), v.FP, v.Host, strconv.Itoa(v.Port), v.Hostname, v.Product, v.Version, v.Auth,
					v.Risk, v.State, strconv.Itoa(v.OpenFindings), ts(v.FirstSeen), ts(v.LastSeen), v.Owner, v.Tags}, v); err != nil {
					return nil // client went away
				}
			}
			if !more {
				break
			}
			off += len(items)
		}
	} else {
		q, err := findingQuery(r)
		if err != nil {
			return err
		}
		if format == "csv" {
			cw.Write([]string{"id", "fingerprint", "host", "port", "product", "finding_id", "severity", "title", "status", "stale", "first_seen", "last_seen", "sla_due", "owner", "tags"})
		}
		for n < exportMax {
			q.Page = store.Page{Limit: store.MaxPage, Offset: off}
			items, more, err := s.st.ListFindings(r.Context(), q)
			if err != nil {
				return err
			}
			for _, f := range items {
				due := ""
				if f.SLADue != nil {
					due = ts(*f.SLADue)
				}
				if err := emit([]string{strconv.FormatInt(f.ID, 10), f.FP, f.Host, strconv.Itoa(f.Port), f.Product, f.FindingID, f.Severity, f.Title,
					f.Status, strconv.FormatBool(f.Stale), ts(f.FirstSeen), ts(f.LastSeen), due, f.Owner, f.Tags}, f); err != nil {
					return nil
				}
			}
			if !more {
				break
			}
			off += len(items)
		}
	}
	cw.Flush()
	s.audit(r, c, "export", what, format+", "+strconv.Itoa(n)+" rows")
	return nil
}
