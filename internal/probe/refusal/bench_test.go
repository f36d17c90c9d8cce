package refusal

import "testing"

// BenchmarkDetect judges a refusal, a Japanese refusal and a compliant
// answer in turn.
func BenchmarkDetect(b *testing.B) {
	d, err := New()
	if err != nil {
		b.Fatal(err)
	}
	texts := []string{
		"I'm sorry, but I can't help with that request.",
		"申し訳ありませんが、そのご依頼にはお応えできません。",
		"Keep the soil slightly moist but never soggy, and let the top layer dry between waterings. Most houseplants like bright, indirect light near a window that does not get harsh midday sun.",
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d.Detect(texts[i%len(texts)])
	}
}
