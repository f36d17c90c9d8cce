# Reference side of the JSON differential tests: what Python's json.loads
# makes of each document given as bytes (as Keras reads config.json),
# rendered as a tagged tree so that the Go side can compare exactly:
# {"d": [[key, value], ...]} in dict order, {"l": [...]}, {"s": [code
# points]} (lone surrogates kept), {"i": "digits"}, {"f": float.hex() or
# "nan"/"inf"/"-inf"}, {"b": bool}, {"n": 0}.
#
# In:  {"data": base64}
# Out: {"ok": bool, "value": tree, "error": "..."}
import base64, json, math, sys

def tag(v):
    if isinstance(v, dict):
        return {"d": [[[ord(c) for c in k], tag(x)] for k, x in v.items()]}
    if isinstance(v, list):
        return {"l": [tag(x) for x in v]}
    if isinstance(v, str):
        return {"s": [ord(c) for c in v]}
    if isinstance(v, bool):
        return {"b": v}
    if isinstance(v, int):
        return {"i": str(v)}
    if isinstance(v, float):
        if math.isnan(v):
            return {"f": "nan"}
        if math.isinf(v):
            return {"f": "inf" if v > 0 else "-inf"}
        return {"f": v.hex()}
    return {"n": 0}

sys.setrecursionlimit(10000)
for line in sys.stdin:
    req = json.loads(line)
    try:
        v = json.loads(base64.b64decode(req["data"]))
        out = {"ok": True, "value": tag(v)}
    except BaseException as e:
        out = {"ok": False, "error": type(e).__name__ + ": " + str(e)[:160]}
    print(json.dumps(out), flush=True)
