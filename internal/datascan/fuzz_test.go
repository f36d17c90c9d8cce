package datascan

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// fuzzScanner has small limits so that fuzzed inputs reach the segment,
// part and bomb paths.
func fuzzScanner(t *testing.T) *Scanner {
	s, err := New(Options{MaxFieldBytes: 4096, MaxRecordBytes: 8192, MaxDecompressed: 1 << 20, MaxSpool: 1 << 20, MinTriggerRecords: 2, MinDuplicates: 2})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// FuzzScanReader: any bytes, of any format the content suggests (JSON
// Lines, JSON, CSV, text, Parquet, compressed, archives), scan without a
// panic; findings point at records the file has, offsets inside it.
func FuzzScanReader(f *testing.F) {
	jl := jsonlBytes(f)
	for _, seed := range [][]byte{jl, jsonArrayBytes(), csvBytes(','), csvBytes('\t'), parquetBytes(f), gz(jl), zst(jl), xzb(jl),
		tarOf(map[string][]byte{"a.jsonl": jl}), zipOf(map[string][]byte{"a.csv": csvBytes(',')}),
		[]byte(`{"messages":[{"role":"user","content":"hi \ud83d\ude00"},{"role":"assistant","content":"x"}]}`), []byte("plain text\n")} {
		f.Add(seed)
	}
	s := fuzzScanner(&testing.T{})
	f.Fuzz(func(t *testing.T, data []byte) {
		sink := &memSink{}
		st, err := s.ScanReader(context.Background(), "fuzz", bytes.NewReader(data), sink)
		if err != nil {
			t.Fatal(err)
		}
		recs := int64(0)
		for _, fi := range sink.files {
			recs += fi.Records
		}
		if st.Records != recs {
			t.Fatalf("stats %d records, files %d", st.Records, recs)
		}
		for _, fd := range sink.findings {
			if fd.Record < 0 || fd.Offset < -1 || fd.Kind == "" {
				t.Fatalf("bad finding %+v", fd)
			}
		}
	})
}

// redactCopy runs the JSON Lines or CSV reader with a redacted output.
func redactCopy(t *testing.T, s *Scanner, data []byte) ([]byte, FileInfo) {
	r := s.newRun(context.Background(), &memSink{}, 1)
	wait := r.startWorkers(1)
	var out bytes.Buffer
	info := (&reader{r: r}).scanStream(&source{name: "x"}, bytes.NewReader(data), nil, &out)
	close(r.jobs)
	wait()
	return out.Bytes(), info
}

// FuzzJSONLCopy: the redacted copy of valid JSON Lines is valid JSON Lines
// with as many lines, and the same values where nothing was redacted.
func FuzzJSONLCopy(f *testing.F) {
	f.Add([]byte(`{"a": "b", "c": [1, 2.5e3, true, null, {"d": "\u00e9\n\"x\""}]}` + "\n" + `{"text": "key AKIAIOSFODNN7EXAMPLE"}` + "\n"))
	f.Add([]byte(`{"k":"\ud800 lone surrogate"}` + "\n"))
	s := fuzzScanner(&testing.T{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var n int
		for _, line := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var v map[string]any
			if json.Unmarshal(line, &v) != nil || !json.Valid(line) {
				return // only valid JSON Lines of objects
			}
			n++
		}
		if n == 0 || detect(data) != FormatJSONL {
			return
		}
		out, info := redactCopy(t, s, data)
		if info.Error != "" {
			t.Fatalf("valid JSON Lines reported bad: %s", info.Error)
		}
		got, err := jsonlLines(out)
		if err != nil || got != n {
			t.Fatalf("copy has %d valid lines (%v), want %d:\n%q\n%q", got, err, n, data, out)
		}
		if len(s.red.Find(string(data))) == 0 {
			// Nothing to redact: every line decodes to the same value.
			a, b := bytes.Split(bytes.TrimSpace(data), []byte("\n")), bytes.Split(bytes.TrimSpace(out), []byte("\n"))
			for i := range a {
				var va, vb any
				json.Unmarshal(a[i], &va)
				json.Unmarshal(b[min(i, len(b)-1)], &vb)
				ja, _ := json.Marshal(va)
				jb, _ := json.Marshal(vb)
				if !bytes.Equal(ja, jb) && !strings.Contains(string(a[i]), `\ud8`) && !strings.Contains(string(a[i]), `\udc`) {
					t.Fatalf("line %d changed: %s -> %s", i, ja, jb)
				}
			}
		}
	})
}

// FuzzCSV: the CSV reader agrees with encoding/csv on what the cells are
// (checked through the copy, for input with nothing to redact).
func FuzzCSV(f *testing.F) {
	f.Add(string(csvBytes(',')))
	f.Add("a,b\n\"x,y\",\"say \"\"hi\"\"\"\n1,2\n3,4\n")
	s := fuzzScanner(&testing.T{})
	f.Fuzz(func(t *testing.T, data string) {
		if detect([]byte(data)) != FormatCSV || len(s.red.Find(data)) > 0 || strings.ContainsAny(data, "\r") {
			return
		}
		r := csv.NewReader(strings.NewReader(data))
		r.FieldsPerRecord = -1
		want, err := r.ReadAll()
		if err != nil {
			return
		}
		out, _ := redactCopy(t, s, []byte(data))
		r = csv.NewReader(bytes.NewReader(out))
		r.FieldsPerRecord = -1
		got, err := r.ReadAll()
		if err != nil {
			t.Fatalf("copy is not CSV: %v\n%q", err, out)
		}
		if len(got) != len(want) {
			t.Fatalf("%d rows, encoding/csv %d:\n%q\n%q", len(got), len(want), data, out)
		}
		for i := range want {
			if strings.Join(got[i], "\x00") != strings.Join(want[i], "\x00") {
				t.Fatalf("row %d: %q, encoding/csv %q", i, got[i], want[i])
			}
		}
	})
}

var _ = io.EOF

// FuzzParquet: corrupt Parquet files are an error of the file, never a
// panic or a hang of the scan.
func FuzzParquet(f *testing.F) {
	f.Add(parquetBytes(f))
	s := fuzzScanner(&testing.T{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := s.newRun(context.Background(), &memSink{}, 1)
		wait := r.startWorkers(1)
		info := FileInfo{}
		fs := r.newFileScan(&source{name: "p"}, &info)
		fs.readParquet(bytes.NewReader(data), int64(len(data)))
		fs.wait()
		close(r.jobs)
		wait()
	})
}
