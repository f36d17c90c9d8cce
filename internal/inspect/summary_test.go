package inspect

import (
	"reflect"
	"testing"

	"github.com/llmfence/llmfence/internal/verdict"
)

func TestSummaryMerge(t *testing.T) {
	var total Summary
	total.Merge(Summary{}) // an empty summary adds nothing and allocates no map
	if total.Verdicts != nil {
		t.Fatalf("merging an empty summary made verdicts %v", total.Verdicts)
	}
	total.Merge(Summary{Files: 3, Failed: 1, Errors: 1, NotInspected: 1,
		Verdicts: map[verdict.Verdict]int{verdict.Clean: 2, verdict.NotInspected: 1}})
	total.Merge(Summary{Files: 2, Failed: 2, Verdicts: map[verdict.Verdict]int{verdict.Clean: 1, verdict.Malicious: 1}})
	want := Summary{Files: 5, Failed: 3, Errors: 1, NotInspected: 1,
		Verdicts: map[verdict.Verdict]int{verdict.Clean: 3, verdict.NotInspected: 1, verdict.Malicious: 1}}
	if !reflect.DeepEqual(total, want) {
		t.Fatalf("merged %+v, want %+v", total, want)
	}
}
