package pythontest

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
)

// NpyCase is one generated .npy header for the differential tests.
type NpyCase struct {
	Name string
	Data []byte
}

var npyDescrs = []string{
	`'<f4'`, `'|O'`, `'O'`, `"|O"`, `'\x4f'`, `'\117'`, `'\u004f'`, `'\U0000004f'`, `'\N{LATIN CAPITAL LETTER O}'`,
	`u'O'`, `r'O'`, `'O' ''`, `'|' 'O'`, `'|' "O"`, `b'O'`, `'object'`, `'object_'`, `'object0'`, `'O8'`, `'O4'`, `'<O'`,
	`'i4,O'`, `'i4, O'`, `'(2,)O'`, `'2O'`, `'f8'`, `'<U5'`, `'|S3'`, `'<M8[D]'`, `'?'`, `'|b1'`,
	`[('a', '<i4'), ('b', '|O')]`, `[('a', '<i4'), ('b', '<f8')]`, `[('a', '<i4'), ('b', '|O', (2,))]`,
	`[(('t', 'a'), '|O')]`, `('|O', (2,))`, `('<f4', (2,))`, `[('a', [('b', 'O')])]`, `[('', '|V4'), ('a', '<f4')]`,
	`[('a', '\x4f')]`, `[('a', 'O'), ]`, `(('a', 'O'),)`, `[['a', 'O']]`, `'Ob'`, `'Object'`, `'o'`, `' O'`,
	`'''O'''`, `"""|O"""`, `('|O')`, `'<f4' if True else 'O'`, `'O'.upper()`, `f'O'`, `'\x4F\x38'`,
}

var npyShapes = []string{`(3,)`, `(2, 3)`, `()`, `(3)`, `[3]`, `(True, 2)`, `(3L,)`, `(0x3,)`, `(3_0,)`, `(-1,)`, `(1.0,)`, `(99999999999999999999,)`, `(+3,)`, `(3, )`}
var npyOrders = []string{`False`, `True`, `0`, `None`, `'False'`}
var npyKeys = [][3]string{
	{`'descr'`, `'fortran_order'`, `'shape'`},
	{`"descr"`, `"fortran_order"`, `"shape"`},
	{`'de' 'scr'`, `'fortran_' "order"`, `'sha' 'pe'`},
	{`'\x64escr'`, `'fortran\x5forder'`, `'\u0073hape'`},
	{`u'descr'`, `r'fortran_order'`, `'shape'`},
	{`b'descr'`, `'fortran_order'`, `'shape'`},
}

// npyFile wraps a header text in a .npy preamble of the given version,
// padded as NumPy pads it.
func npyFile(major byte, header string, pad bool) []byte {
	h := header
	pre := 10
	if major >= 2 {
		pre = 12
	}
	if pad {
		for (pre+len(h)+1)%64 != 0 {
			h += " "
		}
		h += "\n"
	}
	b := []byte("\x93NUMPY")
	b = append(b, major, 0)
	if major == 1 {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(h)))
	} else {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(h)))
	}
	return append(append(b, h...), "\x80\x02cos\nsystem\n."...)
}

// NpyCases returns headers: every descr spelling in an ordinary header,
// the keys spelled every way, every shape and fortran_order value,
// duplicate keys (the last wins), comments, continuations and line breaks,
// every version, then random mutations of those.
func NpyCases(seed uint64, n int) []NpyCase {
	var out []NpyCase
	add := func(name string, major byte, h string) {
		out = append(out, NpyCase{name, npyFile(major, h, true)})
	}
	std := func(k [3]string, d, o, s string) string {
		return "{" + k[0] + ": " + d + ", " + k[1] + ": " + o + ", " + k[2] + ": " + s + ", }"
	}
	for _, d := range npyDescrs {
		for _, major := range []byte{1, 2, 3} {
			add("descr", major, std(npyKeys[0], d, "False", "(3,)"))
		}
	}
	for _, k := range npyKeys {
		add("keys", 1, std(k, `'|O'`, "False", "(3,)"))
	}
	for _, s := range npyShapes {
		add("shape", 1, std(npyKeys[0], `'|O'`, "False", s))
		add("shape", 3, std(npyKeys[0], `'<f8'`, "False", s))
	}
	for _, o := range npyOrders {
		add("order", 1, std(npyKeys[0], `'|O'`, o, "(3,)"))
	}
	for _, h := range []string{
		`{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'descr': '|O'}`,
		`{'descr': '|O', 'fortran_order': False, 'shape': (3,), 'descr': '<f4'}`,
		`{'descr': '<f4', 'descr': '|O', 'fortran_order': False, 'shape': (3,)}`,
		`{'shape': (3,), 'fortran_order': False, 'descr': '|O'}`,
		`{'descr': '|O', # a comment
 'fortran_order': False, 'shape': (3,)}`,
		"{'descr': \\\n'|O', 'fortran_order': False, 'shape': (3,)}",
		"  {'descr': '|O', 'fortran_order': False, 'shape': (3,)}",
		"\n{'descr': '|O', 'fortran_order': False, 'shape': (3,)}",
		"{'descr': '|O', 'fortran_order': False, 'shape': (3,)}\n# trailing comment",
		"{'descr': '|O', 'fortran_order': False, 'shape': (3,)}\n\n\n",
		"{'descr': '|O', 'fortran_order': False, 'shape': (3,), 1: 2}",
		"{'descr': '|O', 'fortran_order': False, 'shape': (3,), **{}}",
		"dict(descr='|O', fortran_order=False, shape=(3,))",
		"{'descr': '|O', 'fortran_order': False, 'shape': (3,)},",
		"({'descr': '|O', 'fortran_order': False, 'shape': (3,)})",
		"{'descr': '|O', 'fortran_order': False, 'shape': (3,)}; x",
		"{'descr': 'O', 'fortran_order': 1 == 1, 'shape': (3,)}",
		"{'descr':'|O','fortran_order':False,'shape':(3,)}",
		"{'descr': '|O'\t, 'fortran_order': False\f, 'shape': (3,)}",
		"{'descr': 'é|O'[1:], 'fortran_order': False, 'shape': (3,)}",
		"{'descr': '\\N{latin capital letter o}', 'fortran_order': False, 'shape': (3,)}",
		"{'descr': '|\\\nO', 'fortran_order': False, 'shape': (3,)}",
	} {
		for _, major := range []byte{1, 3} {
			add("layout", major, h)
		}
	}
	// A version NumPy refuses, and unpadded headers.
	out = append(out, NpyCase{"minor", append([]byte("\x93NUMPY\x01\x01"), npyFile(1, std(npyKeys[0], `'|O'`, "False", "(3,)"), true)[8:]...)})
	out = append(out, NpyCase{"unpadded", npyFile(1, std(npyKeys[0], `'|O'`, "False", "(3,)"), false)})
	r := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	base := len(out)
	alphabet := `'"\xuUN{}()[],:#O|<>=0123456789 _bLrf` + "\n\t\\"
	for len(out) < base+n {
		src := out[r.IntN(base)]
		major := src.Data[6]
		pre := 10
		if major >= 2 {
			pre = 12
		}
		hlen := len(src.Data) - pre - len("\x80\x02cos\nsystem\n.")
		h := []byte(strings.TrimRight(string(src.Data[pre:pre+hlen]), " \n"))
		for range 1 + r.IntN(3) {
			if len(h) == 0 {
				break
			}
			i := r.IntN(len(h))
			c := alphabet[r.IntN(len(alphabet))]
			switch r.IntN(3) {
			case 0:
				h[i] = c
			case 1:
				h = append(h[:i], h[i+1:]...)
			default:
				h = append(h[:i], append([]byte{c}, h[i:]...)...)
			}
		}
		out = append(out, NpyCase{"mutant", npyFile(major, string(h), true)})
	}
	return out
}
