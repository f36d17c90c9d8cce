package abuse

import (
	"hash/maphash"
	"unicode/utf8"
)

func utf8Valid(s string) bool { return utf8.ValidString(s) }

func maphashBytes(d *Detector, b []byte) uint64 { return maphash.Bytes(d.seed, b) }
