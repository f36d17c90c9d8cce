package pickle

// argKind says how an opcode's operand is encoded in the stream.
type argKind uint8

const (
	argNone        argKind = iota
	argU1                  // 1-byte unsigned
	argU2                  // 2-byte little-endian unsigned
	argI4                  // 4-byte little-endian signed
	argU4                  // 4-byte little-endian unsigned
	argU8                  // 8-byte little-endian unsigned
	argF8                  // 8-byte big-endian IEEE float
	argIntLine             // decimal integer, newline-terminated (I, L)
	argFloatLine           // float literal, newline-terminated (F)
	argMemoLine            // decimal memo index, newline-terminated (p, g)
	argQuotedLine          // quoted, escaped string (S)
	argUnicodeLine         // raw-unicode-escape string (V)
	argLine                // raw line (P)
	argTwoLines            // module and name lines (c, i)
	argStr1                // 1-byte length + bytes
	argStr4                // 4-byte signed length + bytes
	argStr4U               // 4-byte unsigned length + bytes
	argStr8                // 8-byte unsigned length + bytes
)

// op identifies a pickle opcode by its byte.
type op byte

// The opcodes of CPython's pickle, protocols 0 to 5 (Lib/pickletools.py).
const (
	opMark           op = '('
	opStop           op = '.'
	opPop            op = '0'
	opPopMark        op = '1'
	opDup            op = '2'
	opFloat          op = 'F'
	opInt            op = 'I'
	opBinInt         op = 'J'
	opBinInt1        op = 'K'
	opLong           op = 'L'
	opBinInt2        op = 'M'
	opNone           op = 'N'
	opPersID         op = 'P'
	opBinPersID      op = 'Q'
	opReduce         op = 'R'
	opString         op = 'S'
	opBinString      op = 'T'
	opShortBinString op = 'U'
	opUnicode        op = 'V'
	opBinUnicode     op = 'X'
	opAppend         op = 'a'
	opBuild          op = 'b'
	opGlobal         op = 'c'
	opDict           op = 'd'
	opEmptyDict      op = '}'
	opAppends        op = 'e'
	opGet            op = 'g'
	opBinGet         op = 'h'
	opInst           op = 'i'
	opLongBinGet     op = 'j'
	opList           op = 'l'
	opEmptyList      op = ']'
	opObj            op = 'o'
	opPut            op = 'p'
	opBinPut         op = 'q'
	opLongBinPut     op = 'r'
	opSetItem        op = 's'
	opTuple          op = 't'
	opEmptyTuple     op = ')'
	opSetItems       op = 'u'
	opBinFloat       op = 'G'
	opProto          op = 0x80
	opNewObj         op = 0x81
	opExt1           op = 0x82
	opExt2           op = 0x83
	opExt4           op = 0x84
	opTuple1         op = 0x85
	opTuple2         op = 0x86
	opTuple3         op = 0x87
	opNewTrue        op = 0x88
	opNewFalse       op = 0x89
	opLong1          op = 0x8a
	opLong4          op = 0x8b
	opBinBytes       op = 'B'
	opShortBinBytes  op = 'C'
	opShortBinUni    op = 0x8c
	opBinUnicode8    op = 0x8d
	opBinBytes8      op = 0x8e
	opEmptySet       op = 0x8f
	opAddItems       op = 0x90
	opFrozenSet      op = 0x91
	opNewObjEx       op = 0x92
	opStackGlobal    op = 0x93
	opMemoize        op = 0x94
	opFrame          op = 0x95
	opByteArray8     op = 0x96
	opNextBuffer     op = 0x97
	opReadonlyBuffer op = 0x98
)

// opInfo describes one opcode.
type opInfo struct {
	name  string
	arg   argKind
	proto int // protocol that introduced it
}

// opTable maps every opcode byte to its description; a zero name means the
// byte is not an opcode.
var opTable = func() [256]opInfo {
	var t [256]opInfo
	set := func(o op, name string, a argKind, proto int) { t[o] = opInfo{name, a, proto} }
	set(opMark, "MARK", argNone, 0)
	set(opStop, "STOP", argNone, 0)
	set(opPop, "POP", argNone, 0)
	set(opPopMark, "POP_MARK", argNone, 1)
	set(opDup, "DUP", argNone, 0)
	set(opFloat, "FLOAT", argFloatLine, 0)
	set(opInt, "INT", argIntLine, 0)
	set(opBinInt, "BININT", argI4, 1)
	set(opBinInt1, "BININT1", argU1, 1)
	set(opLong, "LONG", argIntLine, 0)
	set(opBinInt2, "BININT2", argU2, 1)
	set(opNone, "NONE", argNone, 0)
	set(opPersID, "PERSID", argLine, 0)
	set(opBinPersID, "BINPERSID", argNone, 1)
	set(opReduce, "REDUCE", argNone, 0)
	set(opString, "STRING", argQuotedLine, 0)
	set(opBinString, "BINSTRING", argStr4, 1)
	set(opShortBinString, "SHORT_BINSTRING", argStr1, 1)
	set(opUnicode, "UNICODE", argUnicodeLine, 0)
	set(opBinUnicode, "BINUNICODE", argStr4U, 1)
	set(opAppend, "APPEND", argNone, 0)
	set(opBuild, "BUILD", argNone, 0)
	set(opGlobal, "GLOBAL", argTwoLines, 0)
	set(opDict, "DICT", argNone, 0)
	set(opEmptyDict, "EMPTY_DICT", argNone, 1)
	set(opAppends, "APPENDS", argNone, 1)
	set(opGet, "GET", argMemoLine, 0)
	set(opBinGet, "BINGET", argU1, 1)
	set(opInst, "INST", argTwoLines, 0)
	set(opLongBinGet, "LONG_BINGET", argU4, 1)
	set(opList, "LIST", argNone, 0)
	set(opEmptyList, "EMPTY_LIST", argNone, 1)
	set(opObj, "OBJ", argNone, 1)
	set(opPut, "PUT", argMemoLine, 0)
	set(opBinPut, "BINPUT", argU1, 1)
	set(opLongBinPut, "LONG_BINPUT", argU4, 1)
	set(opSetItem, "SETITEM", argNone, 0)
	set(opTuple, "TUPLE", argNone, 0)
	set(opEmptyTuple, "EMPTY_TUPLE", argNone, 1)
	set(opSetItems, "SETITEMS", argNone, 1)
	set(opBinFloat, "BINFLOAT", argF8, 1)
	set(opProto, "PROTO", argU1, 2)
	set(opNewObj, "NEWOBJ", argNone, 2)
	set(opExt1, "EXT1", argU1, 2)
	set(opExt2, "EXT2", argU2, 2)
	set(opExt4, "EXT4", argI4, 2)
	set(opTuple1, "TUPLE1", argNone, 2)
	set(opTuple2, "TUPLE2", argNone, 2)
	set(opTuple3, "TUPLE3", argNone, 2)
	set(opNewTrue, "NEWTRUE", argNone, 2)
	set(opNewFalse, "NEWFALSE", argNone, 2)
	set(opLong1, "LONG1", argStr1, 2)
	set(opLong4, "LONG4", argStr4, 2)
	set(opBinBytes, "BINBYTES", argStr4U, 3)
	set(opShortBinBytes, "SHORT_BINBYTES", argStr1, 3)
	set(opShortBinUni, "SHORT_BINUNICODE", argStr1, 4)
	set(opBinUnicode8, "BINUNICODE8", argStr8, 4)
	set(opBinBytes8, "BINBYTES8", argStr8, 4)
	set(opEmptySet, "EMPTY_SET", argNone, 4)
	set(opAddItems, "ADDITEMS", argNone, 4)
	set(opFrozenSet, "FROZENSET", argNone, 4)
	set(opNewObjEx, "NEWOBJ_EX", argNone, 4)
	set(opStackGlobal, "STACK_GLOBAL", argNone, 4)
	set(opMemoize, "MEMOIZE", argNone, 4)
	set(opFrame, "FRAME", argU8, 4)
	set(opByteArray8, "BYTEARRAY8", argStr8, 5)
	set(opNextBuffer, "NEXT_BUFFER", argNone, 5)
	set(opReadonlyBuffer, "READONLY_BUFFER", argNone, 5)
	return t
}()

// isStrOp reports whether the opcode pushes a Python str (as opposed to
// bytes or another type). Python 3 decodes STRING, BINSTRING and
// SHORT_BINSTRING to str with the default encoding.
func isStrOp(o op) bool {
	switch o {
	case opString, opBinString, opShortBinString, opUnicode, opBinUnicode, opShortBinUni, opBinUnicode8:
		return true
	}
	return false
}
