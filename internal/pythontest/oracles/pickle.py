# Reference side of the pickle differential tests: what CPython's own
# (C-accelerated) unpickler does with each input, without importing or
# running anything. find_class records the (module, name) it is asked for
# and hands back a harmless stub class; persistent_load (which torch.load
# supplies) returns a stub too. Streams are loaded one after another from
# the same file, as torch's legacy loader does, until one fails or the data
# ends.
#
# In:  {"data": base64, "streams": max streams}
# Out: {"imports": [[module, name], ...], "calls": n, "streams": n,
#       "error": "..." or null, "end": offset after the last good stream}
import base64, io, json, pickle, resource, sys

# A memo index of 2**31 makes CPython grow its memo table to match: cap the
# address space so such inputs end in MemoryError at once.
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

class Stub:
    def __new__(cls, *a, **k):
        return object.__new__(cls)
    def __init__(self, *a, **k):
        pass
    def __call__(self, *a, **k):
        CALLS[0] += 1
        return Stub()
    def __setstate__(self, state):
        pass
    def __setitem__(self, k, v):
        pass
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Stub()

CALLS = [0]

class Recorder(pickle.Unpickler):
    def __init__(self, f, imports):
        super().__init__(f)
        self.imports = imports
    def find_class(self, module, name):
        self.imports.append([module, name])
        # A real import of a name that is not a dotted identifier fails:
        # fail the same way instead of handing back a stub.
        if not all(p.isidentifier() for p in (module + "." + name).split(".")):
            raise ModuleNotFoundError(module)
        def new(cls, *a, **k):
            CALLS[0] += 1
            return object.__new__(cls)
        return type("S", (Stub,), {"__new__": new})
    def persistent_load(self, pid):
        return Stub()

for line in sys.stdin:
    req = json.loads(line)
    data = base64.b64decode(req["data"])
    f = io.BytesIO(data)
    imports, err, n, end = [], None, 0, 0
    CALLS[0] = 0
    while n < req.get("streams", 32) and f.tell() < len(data):
        try:
            Recorder(f, imports).load()
        except RecursionError as e:
            err = "RecursionError"
            break
        except MemoryError:
            err = "MemoryError"
            break
        except Exception as e:
            err = type(e).__name__ + ": " + str(e)[:200]
            break
        n += 1
        end = f.tell()
    print(json.dumps({"imports": imports, "calls": CALLS[0], "streams": n, "error": err, "end": end}), flush=True)
