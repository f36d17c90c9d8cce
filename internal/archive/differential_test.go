package archive

import (
	"encoding/base64"
	"testing"

	"github.com/llmfence/llmfence/internal/pythontest"
)

type npyReq struct {
	Data string `json:"data"`
}

type npyResp struct {
	OK     bool   `json:"ok"`
	Object bool   `json:"object"`
	Offset int64  `json:"offset"`
	Error  string `json:"error"`
}

// TestDifferentialNumPy generates .npy headers (every spelling of an
// object dtype, of the keys, shapes and flags; duplicate keys, comments,
// continuations, every version; random mutations) and asks NumPy's own
// header reader about each. Wherever NumPy reads the header, ParseNpyHeader
// must too, agree on whether the data is a pickle (dtype.hasobject) and on
// where it starts.
func TestDifferentialNumPy(t *testing.T) {
	py := pythontest.Need(t, "numpy")
	n := 3000
	if testing.Short() {
		n = 300
	}
	cases := pythontest.NpyCases(1, n)
	reqs := make([]npyReq, len(cases))
	for i, c := range cases {
		reqs[i] = npyReq{Data: base64.StdEncoding.EncodeToString(c.Data)}
	}
	refs := pythontest.Batch[npyReq, npyResp](t, py, pythontest.Oracle("npy"), reqs)
	bad, numpyOK := 0, 0
	for i, c := range cases {
		ref := refs[i]
		if !ref.OK {
			continue // NumPy refuses it: nothing is loaded
		}
		numpyOK++
		h, err := ParseNpyHeader(c.Data)
		var problem string
		switch {
		case err != nil:
			problem = "llmfence refuses a header NumPy reads: " + err.Error()
		case h.Object != ref.Object:
			problem = "object dtype: NumPy " + yesNo(ref.Object) + ", llmfence " + yesNo(h.Object)
		case h.DataOffset != ref.Offset:
			problem = "data offset differs"
		}
		if problem != "" {
			bad++
			if bad <= 15 {
				t.Errorf("%s %q: %s", c.Name, c.Data[:min(len(c.Data), 140)], problem)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d headers NumPy reads disagree", bad, numpyOK)
	}
	t.Logf("%d headers, %d read by NumPy", len(cases), numpyOK)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
