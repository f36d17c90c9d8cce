package pickle

import (
	"encoding/binary"
	"strings"
)

// pk builds pickle streams byte by byte for the tests.
type pk struct{ b []byte }

func newPK() *pk { return &pk{} }

func (p *pk) raw(b ...byte) *pk      { p.b = append(p.b, b...); return p }
func (p *pk) str(s string) *pk       { p.b = append(p.b, s...); return p }
func (p *pk) op(o op, b ...byte) *pk { p.b = append(append(p.b, byte(o)), b...); return p }
func (p *pk) proto(n byte) *pk       { return p.op(opProto, n) }
func (p *pk) mark() *pk              { return p.op(opMark) }
func (p *pk) stop() *pk              { return p.op(opStop) }
func (p *pk) reduce() *pk            { return p.op(opReduce) }
func (p *pk) tuple() *pk             { return p.op(opTuple) }
func (p *pk) memoize() *pk           { return p.op(opMemoize) }
func (p *pk) binput(n byte) *pk      { return p.op(opBinPut, n) }
func (p *pk) binget(n byte) *pk      { return p.op(opBinGet, n) }
func (p *pk) k(n byte) *pk           { return p.op(opBinInt1, n) }
func (p *pk) bytes() []byte          { return append([]byte(nil), p.b...) }

// global writes GLOBAL module\nname\n.
func (p *pk) global(module, name string) *pk {
	return p.op(opGlobal).str(module + "\n" + name + "\n")
}

// su writes SHORT_BINUNICODE.
func (p *pk) su(s string) *pk { return p.op(opShortBinUni, byte(len(s))).str(s) }

// bu writes BINUNICODE.
func (p *pk) bu(s string) *pk {
	p.op(opBinUnicode)
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(len(s)))
	return p.str(s)
}

// sg writes a STACK_GLOBAL of two SHORT_BINUNICODE strings.
func (p *pk) sg(module, name string) *pk { return p.su(module).su(name).op(opStackGlobal) }

// u64 appends a little-endian uint64.
func (p *pk) u64(v uint64) *pk { p.b = binary.LittleEndian.AppendUint64(p.b, v); return p }

// callG2 pickles module.name('x') with GLOBAL and REDUCE (protocol 2).
func callG2(module, name string) []byte {
	return newPK().proto(2).global(module, name).bu("x").op(opTuple1).reduce().stop().bytes()
}

// callSG4 pickles module.name('x') with STACK_GLOBAL (protocol 4).
func callSG4(module, name string) []byte {
	return newPK().proto(4).sg(module, name).memoize().bu("x").op(opTuple1).reduce().stop().bytes()
}

// torchStateDict2 is shaped like data.pkl of torch.save({...}) at protocol 2:
// an OrderedDict of two tensors, globals reused through BINPUT/BINGET.
func torchStateDict2() []byte {
	p := newPK().proto(2)
	p.global("collections", "OrderedDict").binput(0).op(opEmptyTuple).reduce().binput(1).mark()
	// "layer.weight": _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', 6), 0, (2, 3), (3, 1), False, OrderedDict())
	p.bu("layer.weight").binput(2)
	p.global("torch._utils", "_rebuild_tensor_v2").binput(3)
	p.mark().mark().bu("storage").binput(4).global("torch", "FloatStorage").binput(5).bu("0").binput(6).bu("cpu").binput(7).k(6).tuple().binput(8).op(opBinPersID)
	p.k(0).k(2).k(3).op(opTuple2).k(3).k(1).op(opTuple2).op(opNewFalse).binget(0).op(opEmptyTuple).reduce().tuple().reduce().binput(9)
	// "layer.bias" reuses the rebuild function, storage tag and location via the memo.
	p.bu("layer.bias").binput(10)
	p.binget(3).mark().mark().binget(4).binget(5).bu("1").binget(7).k(2).tuple().op(opBinPersID)
	p.k(0).k(2).op(opTuple1).k(1).op(opTuple1).op(opNewFalse).binget(0).op(opEmptyTuple).reduce().tuple().reduce().binput(11)
	p.op(opSetItems)
	// _metadata attribute set with BUILD, as torch does.
	p.op(opEmptyDict).bu("_metadata").binget(0).op(opEmptyTuple).reduce().op(opSetItem).op(opBuild)
	return p.stop().bytes()
}

// torchStateDict4 is the protocol 4 form: FRAME, STACK_GLOBAL with module
// and name strings MEMOIZEd and fetched again with BINGET, and a Parameter.
func torchStateDict4() []byte {
	body := newPK()
	body.su("collections").memoize().su("OrderedDict").memoize().op(opStackGlobal).memoize() // memo 0,1,2
	body.op(opEmptyTuple).reduce().memoize()                                                 // memo 3
	body.mark()
	body.su("w").memoize()                                                        // 4
	body.su("torch._utils").memoize().su("_rebuild_parameter").memoize()          // 5,6
	body.op(opStackGlobal).memoize()                                              // 7
	body.binget(5).su("_rebuild_tensor_v2").memoize().op(opStackGlobal).memoize() // 8 (module from memo), 9
	body.mark().mark().su("storage").memoize()                                    // 10
	body.su("torch").memoize().su("BFloat16Storage").memoize().op(opStackGlobal)  // 11, 12
	body.memoize().su("0").memoize().su("cuda:0").memoize().k(4).tuple().memoize().op(opBinPersID)
	body.k(0).k(4).op(opTuple1).k(1).op(opTuple1).op(opNewFalse)
	body.binget(2).op(opEmptyTuple).reduce().op(opTuple).reduce().memoize() // _rebuild_tensor_v2(...)
	body.op(opNewTrue).binget(2).op(opEmptyTuple).reduce().op(opTuple3).reduce().memoize()
	body.op(opSetItems)
	body.stop()
	p := newPK().proto(4).op(opFrame).u64(uint64(len(body.b))).raw(body.b...)
	return p.bytes()
}

// numpyArray2 is shaped like pickle.dumps(numpy.array([1.0, 2.0, 3.0]), 2).
func numpyArray2() []byte {
	p := newPK().proto(2)
	p.global("numpy.core.multiarray", "_reconstruct").binput(0)
	p.global("numpy", "ndarray").binput(1)
	p.k(0).op(opTuple1).binput(2)
	p.global("_codecs", "encode").binput(3).bu("b").binput(4).bu("latin1").binput(5).op(opTuple2).binput(6).reduce().binput(7)
	p.op(opTuple3).binput(8).reduce().binput(9)
	p.mark().k(1).k(3).op(opTuple1).binput(10)
	p.global("numpy", "dtype").binput(11).bu("f8").binput(12).op(opNewFalse).op(opNewTrue).op(opTuple3).binput(13).reduce().binput(14)
	p.mark().k(3).bu("<").binput(15).op(opNone).op(opNone).op(opNone).op(opBinInt).raw(0xff, 0xff, 0xff, 0xff).op(opBinInt).raw(0xff, 0xff, 0xff, 0xff).k(0).tuple().binput(16).op(opBuild)
	p.op(opNewFalse).binget(3).bu(strings.Repeat("\u0000", 8) + "\u0000\u0000\u0000\u0000\u0000\u0000\u00f0?").binget(5).op(opTuple2).reduce().tuple().op(opBuild)
	return p.stop().bytes()
}

// numpyArray5 is shaped like a protocol 5 numpy pickle with out-of-band
// buffers (NEXT_BUFFER, READONLY_BUFFER) plus an in-band BYTEARRAY8.
func numpyArray5() []byte {
	p := newPK().proto(5)
	p.global("numpy._core.numeric", "_frombuffer").memoize()
	p.mark().op(opNextBuffer).op(opReadonlyBuffer)
	p.global("numpy", "dtype").memoize().su("f4").op(opNewFalse).op(opNewTrue).op(opTuple3).reduce().memoize()
	p.k(3).op(opTuple1).su("C").op(opTuple).reduce()
	p.op(opByteArray8).u64(3).str("abc").op(opTuple2)
	return p.stop().bytes()
}

// proto0Text is a protocol 0 text pickle: {'name': u'model', 'sizes': set([1, 2]), 'lr': 1.5, 'n': 10L}.
func proto0Text() []byte {
	return []byte("(dp0\nS'name'\np1\nV\\u006dodel\np2\nsS'sizes'\np3\nc__builtin__\nset\np4\n((lp5\nI1\naI2\natp6\nRp7\nsS'lr'\np8\nF1.5\nsS'n'\nL10L\nsg1\nI00\ns.")
}

// legacyTorch is shaped like the legacy (non-zip) torch.save format: three
// small pickles followed by raw storage bytes.
func legacyTorch() []byte {
	p := newPK()
	p.proto(2).op(opLong1, 10).raw(0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19).stop()
	p.proto(2).op(opBinInt2, 0xe9, 0x03).stop()
	p.proto(2).op(opEmptyDict).bu("little_endian").op(opNewTrue).op(opSetItem).stop()
	p.u64(12).raw(0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40)
	return p.bytes()
}

type corpusEntry struct {
	name string
	data []byte
}

// corpus is every Go-built test file, benign and hostile.
func corpus() []corpusEntry {
	deep := newPK().proto(2)
	for range 5000 {
		deep.mark()
	}
	deep.op(opEmptyTuple)
	for range 5000 {
		deep.tuple()
	}
	nestedLists := newPK().proto(2)
	for range 3000 {
		nestedLists.op(opEmptyList)
	}
	for range 2999 {
		nestedLists.op(opAppend)
	}
	huge := newPK().proto(4).op(opBinUnicode8).u64(1 << 62)
	huge.str(strings.Repeat("A", 100-len(huge.b)))
	memoOS := newPK().proto(4).su("os").memoize().su("system").memoize().op(opPop).op(opPop).
		su("benign").op(opPop).binget(0).binget(1).op(opStackGlobal).bu("id").op(opTuple1).reduce().stop()
	memoText := []byte("S'posix'\np1\n0S'system'\np2\n0g1\ng2\n\x93(S'id'\ntR.")
	framed := func(inside, after string) []byte {
		return newPK().proto(4).op(opFrame).u64(uint64(len(inside))).str(inside).str(after).bytes()
	}
	return []corpusEntry{
		// A GLOBAL line split by a frame end: a file read takes the name
		// from after the frame (os.system), pickle.loads reads straight on.
		{"frame_straddle_file", framed("cos\nharmless", "system\n(S'id'\ntR.")},
		// The other way round: only pickle.loads sees os.system.
		{"frame_straddle_bytes", framed("cos\nsys", "tem\n(S'id'\ntR.")},
		{"torch_state_dict_p2", torchStateDict2()},
		{"torch_state_dict_p4", torchStateDict4()},
		{"numpy_array_p2", numpyArray2()},
		{"numpy_array_p5", numpyArray5()},
		{"proto0_text", proto0Text()},
		{"legacy_torch", legacyTorch()},
		{"concat_benign", append(newPK().proto(2).op(opEmptyDict).stop().bytes(), torchStateDict2()...)},
		{"concat_second_malicious", append(torchStateDict2(), callG2("os", "system")...)},
		{"os_system_global", callG2("os", "system")},
		{"os_system_memo_stack_global", memoOS.bytes()},
		{"posix_system_text_memo", memoText},
		{"unicode_escape_module", newPK().proto(4).str("V\\u006fs\nVsystem\n").op(opStackGlobal).op(opEmptyTuple).reduce().stop().bytes()},
		{"string_escape_module", newPK().str("S'\\x6fs'\nS'system'\n").op(opStackGlobal).op(opEmptyTuple).reduce().stop().bytes()},
		{"dotted_name_traversal", newPK().proto(4).sg("torch", "os.system").op(opEmptyTuple).reduce().stop().bytes()},
		{"dunder_traversal", newPK().proto(4).sg("collections", "OrderedDict.__init__.__globals__").stop().bytes()},
		{"compat_builtin_eval", newPK().global("__builtin__", "eval").mark().str("S'1+1'\n").tuple().reduce().stop().bytes()},
		{"unresolvable_call_result", newPK().proto(4).global("builtins", "str").su("os").op(opTuple1).reduce().su("system").op(opStackGlobal).op(opEmptyTuple).reduce().stop().bytes()},
		{"unresolvable_dangerous_module", newPK().proto(4).su("subprocess").global("__main__", "name").op(opEmptyTuple).reduce().op(opStackGlobal).stop().bytes()},
		{"unknown_class", newPK().proto(2).global("__main__", "Net").op(opEmptyTuple).op(opNewObj).op(opEmptyDict).op(opBuild).stop().bytes()},
		{"call_of_call_result", newPK().proto(2).global("__main__", "factory").op(opEmptyTuple).reduce().op(opEmptyTuple).reduce().stop().bytes()},
		{"ext_code", newPK().proto(2).op(opExt2, 0x39, 0x30).op(opEmptyTuple).reduce().stop().bytes()},
		{"inst_os_system", []byte("(S'id'\nios\nsystem\n.")},
		{"obj_subprocess", newPK().proto(1).mark().global("subprocess", "Popen").str("S'id'\n").op(opObj).stop().bytes()},
		{"nullifai_bad_opcode", append(newPK().proto(2).global("os", "system").bu("id").op(opTuple1).reduce().bytes(), 0xff, 0xfe, 0x00)},
		{"nullifai_truncated", newPK().proto(2).global("builtins", "exec").bu("import os").op(opTuple1).reduce().op(opBinUnicode).raw(0xff, 0xff, 0, 0).str("xx").bytes()},
		{"truncated_benign", torchStateDict2()[:40]},
		{"huge_binunicode8", huge.bytes()},
		{"impossible_length", newPK().proto(4).op(opBinBytes8).u64(1 << 63).stop().bytes()},
		{"negative_binstring", newPK().proto(1).op(opBinString).raw(0xff, 0xff, 0xff, 0xff).stop().bytes()},
		{"stack_underflow", newPK().proto(2).reduce().stop().bytes()},
		{"memo_missing", newPK().proto(2).binget(7).stop().bytes()},
		{"bad_protocol", newPK().proto(9).op(opNone).stop().bytes()},
		{"stack_global_bytes", newPK().proto(4).op(opShortBinBytes, 2).str("os").su("system").op(opStackGlobal).stop().bytes()},
		{"deep_marks", deep.stop().bytes()},
		{"deep_lists", nestedLists.stop().bytes()},
		{"not_pickle", []byte("\xff\xd8\xff\xe0 JPEG-ish")},
		{"empty", nil},
		{"lookalike_modules", newPK().proto(2).global("ossify", "x").op(opPop).global("os_utils", "system").op(opPop).global("builtins", "evaluate").op(opPop).
			global("torch.utils.collect_envx", "run").op(opPop).global("numpy.f2pyx", "f").op(opPop).global("pipx", "main").op(opPop).op(opNone).stop().bytes()},
	}
}
