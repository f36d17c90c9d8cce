package risk

import "testing"

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b   string
		want   int
		wantOK bool
	}{
		{"0.1.34", "0.1.34", 0, true},
		{"0.1.33", "0.1.34", -1, true},
		{"0.1.34", "0.1.33", 1, true},
		{"0.5.7", "0.12.3", -1, true}, // numeric, not lexical
		{"0.12.3", "0.5.7", 1, true},
		{"v0.4.0", "0.4.0", 0, true},
		{"V0.4.0", "0.4", 0, true}, // missing components are zero
		{"0.1.34-rc1", "0.1.34", -1, true},
		{"0.1.34-rc2", "0.1.34-rc10", -1, true},
		{"0.1.34-rc1", "0.1.33", 1, true},
		{"0.8.5.dev12+gabc123", "0.8.5", -1, true},
		{"0.8.5rc1", "0.8.5", -1, true},
		{"0.6.6.post1", "0.6.6", 1, true},
		{"0.6.6.post1", "0.6.7", -1, true},
		{"1.2.3+build.7", "1.2.3", 0, true},
		{"b5662", "b5661", 1, true},
		{"b4882", "b9058", -1, true},
		{"5662 (abc1234)", "b5662", 0, true},
		{" 0.3.14 ", "0.3.14", 0, true},
		// unknown versions
		{"0.0.0", "0.1.0", 0, false},
		{"0.1.0", "0.0.0", 0, false},
		{"", "0.1.0", 0, false},
		{"latest", "0.1.0", 0, false},
		{"unknown", "1", 0, false},
		{"1..2", "1.2", 0, false},
		{"0.1.0-", "0.1.0", 0, false},
		{"v", "0.1", 0, false},
	}
	for _, tt := range tests {
		got, ok := CompareVersions(tt.a, tt.b)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("CompareVersions(%q, %q) = %d, %v; want %d, %v", tt.a, tt.b, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestCompareVersionsAntisymmetric(t *testing.T) {
	vs := []string{"0.1.33", "0.1.34-rc1", "0.1.34", "0.1.34.post1", "0.2", "0.12.3", "1.0.0-beta", "1.0.0", "b9058"}
	for _, a := range vs {
		for _, b := range vs {
			x, ok1 := CompareVersions(a, b)
			y, ok2 := CompareVersions(b, a)
			if !ok1 || !ok2 || x != -y {
				t.Errorf("CompareVersions(%q,%q)=%d,%v but reversed %d,%v", a, b, x, ok1, y, ok2)
			}
		}
	}
}
