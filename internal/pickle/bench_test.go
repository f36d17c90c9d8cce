package pickle

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// BenchmarkScanCorpus scans the whole test corpus per iteration and reports
// files/s next to the MB/s of b.SetBytes.
func BenchmarkScanCorpus(b *testing.B) {
	c := corpus()
	var total int64
	for _, e := range c {
		total += int64(len(e.data))
	}
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		for _, e := range c {
			if _, err := Scan(context.Background(), bytes.NewReader(e.data), Options{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(c))*float64(b.N)/b.Elapsed().Seconds(), "files/s")
}

// bigStateDict is a protocol 2 state dict of n tensors, batched in
// SETITEMS of 1000 pairs as Python's pickler does.
func bigStateDict(n int) []byte {
	p := newPK().proto(2)
	p.global("collections", "OrderedDict").binput(0).op(opEmptyTuple).reduce().binput(1)
	p.global("torch._utils", "_rebuild_tensor_v2").binput(2).op(opPop)
	p.global("torch", "FloatStorage").binput(3).op(opPop)
	for i := range n {
		if i%1000 == 0 {
			if i > 0 {
				p.op(opSetItems)
			}
			p.mark()
		}
		p.bu(fmt.Sprintf("layers.%d.weight", i)).binget(2)
		p.mark().mark().bu("storage").binget(3).bu(fmt.Sprint(i)).bu("cpu").k(6).tuple().op(opBinPersID)
		p.k(0).k(2).k(3).op(opTuple2).k(3).k(1).op(opTuple2).op(opNewFalse).binget(0).op(opEmptyTuple).reduce().tuple().reduce()
	}
	return p.op(opSetItems).stop().bytes()
}

// BenchmarkScanLarge scans one state dict of 20,000 tensors.
func BenchmarkScanLarge(b *testing.B) {
	data := bigStateDict(20000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Scan(context.Background(), bytes.NewReader(data), Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "files/s")
}

func TestBigStateDictClean(t *testing.T) {
	res := scanBytes(t, bigStateDict(2500), Options{})
	if res.Verdict() != "clean" || !res.Complete || len(res.Globals) != 3 || res.Globals[1].Count != 1 {
		t.Fatalf("%+v", res)
	}
}
