package pythontest

import (
	"encoding/binary"
	"math/rand/v2"
)

// PickleCase is one generated input for the pickle differential tests.
type PickleCase struct {
	Name string
	Data []byte
}

// Payloads are streams that import a callable and call it, in the
// encodings the protocols offer. Each ends without STOP so that callers
// can append one (or break the stream on purpose).
var payloads = []struct {
	name string
	body []byte
}{
	{"global-reduce", []byte("cos\nsystem\n(S'id'\ntR")},
	{"global-reduce-bin", append([]byte("cposix\nsystem\nX\x02\x00\x00\x00id"), 0x85, 'R')},
	{"stack-global", append(append(append([]byte{0x8c, 2}, "os"...), append([]byte{0x8c, 6}, "system"...)...), 0x93, 0x8c, 2, 'i', 'd', 0x85, 'R')},
	{"stack-global-memo", append(append(append([]byte{0x8c, 10}, "subprocess"...), 0x94, 0x8c, 5), append([]byte("Popen"), 0x94, 0x93, 0x8c, 2, 'i', 'd', 0x85, 'R')...)},
	{"inst", []byte("(S'id'\nios\nsystem\n")},
	{"obj", []byte("(cbuiltins\neval\nS'1'\no")},
	{"newobj", append([]byte("ctyping\nget_type_hints\n)"), 0x81)},
	{"dotted", append(append([]byte{0x8c, 6}, "random"...), append(append([]byte{0x8c, 10}, "_os.system"...), 0x93, 0x8c, 2, 'i', 'd', 0x85, 'R')...)},
}

// prefixes are opcode sequences CPython's unpickler accepts before a
// payload that leave the stack as it found it.
var prefixes = [][]byte{
	nil,
	{0x80, 0}, {0x80, 1}, {0x80, 2}, {0x80, 3}, {0x80, 4}, {0x80, 5},
	[]byte("N0"), []byte("(1"), []byte("I1\n0"), []byte("I01\n0"), []byte("I00\n0"), []byte("I0x1f\n0"), []byte("I-7\n0"),
	[]byte("L12L\n0"), []byte("L-3\n0"), []byte("F-nan\n0"), []byte("Fnan\n0"), []byte("F+nan\n0"), []byte("F-inf\n0"),
	[]byte("Finf\n0"), []byte("F1e5\n0"), []byte("F-0.0\n0"), []byte("F.5\n0"), []byte("F1_0\n0"), []byte("F 1\n0"),
	[]byte("S'x'\n0"), []byte("S\"x\"\n0"), []byte("V\\u0041\n0"), []byte("Vx\n0"),
	[]byte("K\x010"), []byte("M\x01\x000"), []byte("J\x01\x00\x00\x000"), append([]byte{'G'}, append(make([]byte, 8), '0')...),
	{0x88, '0'}, {0x89, '0'}, []byte(")0"), []byte("]0"), []byte("}0"), {0x8f, '0'},
	{0x8c, 1, 'a', '0'}, []byte("X\x01\x00\x00\x00a0"), []byte("B\x01\x00\x00\x00a0"), []byte("C\x01a0"), []byte("T\x01\x00\x00\x00a0"), []byte("U\x01a0"),
	append(append([]byte{0x8e}, le64(1)...), 'a', '0'), append(append([]byte{0x8d}, le64(1)...), 'a', '0'), append(append([]byte{0x96}, le64(1)...), 'a', '0'),
	[]byte("Np0\n0"), []byte("Nq\x000"), []byte("Nr\x00\x00\x00\x000"), {'N', 0x94, '0'}, []byte("N200"),
	[]byte("Pabc\n0"), []byte("NQ0"), []byte("I1\nI2\n\x860"), []byte("(I1\nt0"), []byte("(l0"), []byte("(d0"), []byte("]N\x610"),
	[]byte("]\x28N\x650"), []byte("}NN\x730"), []byte("}(NNu0"), {0x8f, '(', 'N', 0x90, '0'}, []byte("(N\x910"),
	[]byte("Np1\n0g1\n0"), []byte("Nq\x010h\x010"), []byte("Nr\x01\x00\x00\x000j\x01\x00\x00\x000"),
	[]byte("I1\n\x850"), []byte("NN\x860"), []byte("NNN\x870"), []byte("N\x8a\x01\x010"), []byte("\x8b\x01\x00\x00\x00\x010"),
}

func le64(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }

// frame wraps body in a protocol 4 FRAME of its exact length.
func frame(body []byte) []byte {
	return append(append([]byte{0x95}, le64(uint64(len(body)))...), body...)
}

// PickleCases returns n inputs: every payload behind every prefix and
// prefix pair, framed or not, with a STOP, a broken tail, a benign
// stream in front, or concatenated streams; then random mutations of
// those, seeded for reproducibility.
func PickleCases(seed uint64, n int) []PickleCase {
	var out []PickleCase
	add := func(name string, b []byte) { out = append(out, PickleCase{name, append([]byte(nil), b...)}) }
	benign := []byte{0x80, 2, '}', 'q', 0, '.'}
	for _, p := range payloads {
		for i, pre := range prefixes {
			body := append(append([]byte(nil), pre...), p.body...)
			add(p.name+"/prefix", append(body, '.'))
			add(p.name+"/prefix-broken", append(body, 0xff))
			add(p.name+"/prefix-framed", append([]byte{0x80, 4}, frame(append(body, '.'))...))
			pre2 := prefixes[(i*7+3)%len(prefixes)]
			add(p.name+"/prefix2", append(append(append([]byte(nil), pre2...), body...), '.'))
			add(p.name+"/second-stream", append(append(append([]byte(nil), benign...), body...), '.'))
			add(p.name+"/third-stream", append(append(append(append([]byte(nil), benign...), pre...), []byte("N.")...), append(body, '.')...))
		}
	}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	base := len(out)
	for len(out) < base+n {
		src := out[r.IntN(base)].Data
		b := append([]byte(nil), src...)
		switch r.IntN(5) {
		case 0: // flip one byte
			b[r.IntN(len(b))] = byte(r.IntN(256))
		case 1: // insert a random prefix at a random opcode-ish position
			i := r.IntN(len(b) + 1)
			pre := prefixes[r.IntN(len(prefixes))]
			b = append(b[:i], append(append([]byte(nil), pre...), b[i:]...)...)
		case 2: // delete a byte
			i := r.IntN(len(b))
			b = append(b[:i], b[i+1:]...)
		case 3: // insert a random byte
			i := r.IntN(len(b) + 1)
			b = append(b[:i], append([]byte{byte(r.IntN(256))}, b[i:]...)...)
		case 4: // prepend several prefixes
			for range 1 + r.IntN(4) {
				b = append(append([]byte(nil), prefixes[r.IntN(len(prefixes))]...), b...)
			}
		}
		add("mutant", b)
	}
	return out
}
