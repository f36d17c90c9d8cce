package probe

import (
	"math"
	"testing"
)

func near(a, b, eps float64) bool { return math.Abs(a-b) <= eps }

func TestWilson(t *testing.T) {
	// Reference values: Wilson interval for 8/10 is [0.490, 0.943];
	// for 0/20 it is [0, 0.161].
	lo, hi := Wilson(8, 10)
	if !near(lo, 0.4902, 1e-3) || !near(hi, 0.9433, 1e-3) {
		t.Errorf("Wilson(8,10) = %v %v", lo, hi)
	}
	lo, hi = Wilson(0, 20)
	if lo != 0 || !near(hi, 0.1611, 1e-3) {
		t.Errorf("Wilson(0,20) = %v %v", lo, hi)
	}
	if lo, hi := Wilson(0, 0); lo != 0 || hi != 1 {
		t.Errorf("Wilson(0,0) = %v %v", lo, hi)
	}
}

func TestNewcombe(t *testing.T) {
	// Newcombe (1998) example: 56/70 - 48/80 = 0.2, interval [0.0524, 0.3339].
	lo, hi := Newcombe(56, 70, 48, 80)
	if !near(lo, 0.0524, 2e-3) || !near(hi, 0.3339, 2e-3) {
		t.Errorf("Newcombe = %v %v", lo, hi)
	}
}

func TestMannWhitney(t *testing.T) {
	x := []float64{9, 8, 7, 9.5}
	y := []float64{1, 2, 3, 2, 1, 0}
	p, d := MannWhitney(x, y)
	// All 4 x above all 6 y: exact p = 1 / C(10,4) = 1/210.
	if !near(p, 1.0/210, 1e-9) || d != 1 {
		t.Errorf("separated: p=%v delta=%v", p, d)
	}
	p, d = MannWhitney([]float64{1, 1, 1}, []float64{1, 1, 1})
	if p < 0.99 || d != 0 {
		t.Errorf("all tied: p=%v delta=%v", p, d)
	}
	// Large samples use the normal approximation and agree in direction.
	var big1, big2 []float64
	for i := range 50 {
		big1 = append(big1, float64(i)+10)
		big2 = append(big2, float64(i))
	}
	p, d = MannWhitney(big1, big2)
	if p > 0.01 || d <= 0.3 {
		t.Errorf("shifted large: p=%v delta=%v", p, d)
	}
	p, _ = MannWhitney(big2, big1)
	if p < 0.9 {
		t.Errorf("reverse direction: p=%v", p)
	}
}

func TestFisherGreater(t *testing.T) {
	// 10/10 vs 0/10: p = 1/C(20,10).
	p := FisherGreater(10, 10, 0, 10)
	if !near(p, 1/184756.0, 1e-9) {
		t.Errorf("p = %v", p)
	}
	if p := FisherGreater(3, 10, 3, 10); p < 0.5 {
		t.Errorf("equal rates p = %v", p)
	}
}
