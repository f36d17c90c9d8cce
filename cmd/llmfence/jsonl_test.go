package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
)

// decodeJSONL parses --format json output: JSON Lines, one record per
// line. It fails the test on anything else (an indented document, an
// array, a blank line in the middle).
func decodeJSONL[T any](t testing.TB, out string) []T {
	t.Helper()
	var recs []T
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		var r T
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %d of --format json output is not one JSON record: %v\n%s", n, err, out)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
}
