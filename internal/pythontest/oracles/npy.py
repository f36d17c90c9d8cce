# Reference side of the .npy differential tests: how NumPy's own reader
# (numpy.lib.format, as numpy.load with allow_pickle=True calls it) reads
# each header, without reading any array data.
#
# In:  {"data": base64 of the file's first bytes}
# Out: {"ok": bool, "object": dtype.hasobject, "offset": where the data
#       starts, "error": "..."}
import base64, io, json, sys, warnings
import numpy.lib.format as fmt

warnings.simplefilter("ignore")
for line in sys.stdin:
    req = json.loads(line)
    f = io.BytesIO(base64.b64decode(req["data"]))
    try:
        version = fmt.read_magic(f)
        fmt._check_version(version)
        shape, fortran, dtype = fmt._read_array_header(f, version, max_header_size=2**64)
        out = {"ok": True, "object": bool(dtype.hasobject), "offset": f.tell()}
    except BaseException as e:
        out = {"ok": False, "error": type(e).__name__ + ": " + str(e)[:160]}
    print(json.dumps(out), flush=True)
