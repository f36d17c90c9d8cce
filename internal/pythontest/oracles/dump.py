# Writes model files with the real libraries, for tests that inspect what
# those libraries produce. Nothing here loads a file; the malicious objects
# only define __reduce__, which pickling records and never calls.
#
# In:  {"kind": "...", "path": "..."}
# Out: {"ok": true} or {"ok": false, "error": "..."}
import json, os, sys

class Evil:
    """Pickles as a call of os.system (never made here)."""
    def __reduce__(self):
        return (os.system, ("id",))

def joblib_case(kind, path):
    import joblib, numpy as np
    arrays = {
        "f64": np.arange(1000, dtype=np.float64),
        "i32-2d": np.arange(60, dtype=np.int32).reshape(6, 10),
        "bool": np.array([True, False, True]),
        "c128": np.array([1 + 2j, 3 - 4j]),
        "u5": np.array(["alpha", "beta"]),
        "s3": np.array([b"abc", b"de"]),
        "struct": np.zeros(4, dtype=[("a", "<i4"), ("b", "<f8")]),
        "empty": np.zeros((0, 3)),
        "scalar": np.array(3.5),
        "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "big-endian": np.arange(5, dtype=">f4"),
        "datetime": np.array(["2024-01-01", "2025-06-30"], dtype="datetime64[D]"),
        "object": np.array([1, "a", None], dtype=object),
    }
    name, _, comp = kind.partition("@")
    compress = 0
    if comp:
        c, _, level = comp.partition(":")
        compress = (c, int(level or 3)) if c != "zlib" else int(level or 3)
    if name in arrays:
        obj = arrays[name]
    elif name == "dict":
        obj = {"w": arrays["f64"], "b": arrays["i32-2d"], "meta": {"lr": 0.1}}
    elif name == "list":
        obj = [arrays["u5"], 7, arrays["struct"], "x", arrays["object"]]
    elif name == "evil-object-array":
        obj = np.array([1, Evil()], dtype=object)
    elif name == "evil-after-array":
        obj = [arrays["f64"], Evil()]
    elif name == "evil-between-arrays":
        obj = {"a": arrays["i32-2d"], "e": Evil(), "b": arrays["big-endian"]}
    else:
        raise ValueError("unknown joblib case " + kind)
    joblib.dump(obj, path, compress=compress)

def torch_case(kind, path):
    import io, pickle, torch
    sd = {"layer.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "layer.bias": torch.zeros(2)}
    if kind == "zip":
        torch.save(sd, path)
    elif kind == "legacy":
        torch.save(sd, path, _use_new_zipfile_serialization=False)
    elif kind == "pickled-tensor":
        # plain pickle of a tensor: the storage goes through
        # torch.storage._load_from_bytes(torch.save bytes)
        with open(path, "wb") as f:
            pickle.dump(sd, f, protocol=2)
    elif kind == "pickled-tensor-evil-inside":
        inner = io.BytesIO()
        torch.save({"x": Evil()}, inner)
        from torch.storage import _load_from_bytes
        class Nested:
            def __reduce__(self):
                return (_load_from_bytes, (inner.getvalue(),))
        with open(path, "wb") as f:
            pickle.dump({"t": Nested()}, f, protocol=2)
    elif kind == "legacy-evil":
        torch.save({"w": torch.zeros(2), "e": Evil()}, path, _use_new_zipfile_serialization=False)
    else:
        raise ValueError("unknown torch case " + kind)

for line in sys.stdin:
    req = json.loads(line)
    try:
        lib, _, kind = req["kind"].partition("/")
        if lib == "joblib":
            joblib_case(kind, req["path"])
        elif lib == "torch":
            torch_case(kind, req["path"])
        else:
            raise ValueError("unknown library " + lib)
        print(json.dumps({"ok": True}), flush=True)
    except Exception as e:
        print(json.dumps({"ok": False, "error": type(e).__name__ + ": " + str(e)}), flush=True)
