"""Derive the pickle deny-list from what the standard library executes.

Run with the interpreter pickles are loaded with (CPython 3):

    /usr/bin/python3 internal/pickle/gen/reach.py > internal/pickle/derived.txt

(`go test ./internal/pickle -run TestDerivedList -update` does the same and
fails when the embedded file is stale.)

It imports every standard-library module (minus the few whose import has
side effects), and for every callable a pickle can name — module
attributes, and methods of classes defined there — decides whether calling
it can reach a *sink*: a primitive that runs code or commands (eval, exec,
compile, __import__, os.system, the exec*/spawn*/fork family,
_posixsubprocess.fork_exec, marshal/pickle loads, dlopen, threads). A
Python function reaches a sink if its bytecode (nested functions,
comprehensions and lambdas included) names one, or names a function or
class that reaches one: global names are resolved in the function's own
globals, attribute chains on modules and classes are followed statically
(inspect.getattr_static, nothing is called), and a method call on an
unknown object is linked to every method of that name that classes
defined in the same module have, inherited ones included (over-approximate
on purpose). A class reaches a sink through
__new__, __init__, __setstate__ or __call__. Nothing is called and no
pickle is loaded.

It also lists module attributes that are modules (random._os is os), so
that dotted names such as random._os.system resolve to what they are.

Output, one record a line, sorted:
    A <module.attr> <module it is>
    R <module.name> <sink>   <path>
"""
import builtins, dis, importlib, inspect, pkgutil, sys, types, warnings

warnings.simplefilter("ignore")

SKIP_PREFIXES = ("test", "idlelib", "turtledemo", "tkinter", "lib2to3.tests", "ctypes.test",
                 "distutils.tests", "unittest.test", "sqlite3.test", "ensurepip._bundled", "pydoc_data")
SKIP = {"antigravity", "this", "__hello__", "__phello__", "xxlimited", "xxlimited_35", "xxsubtype",
        "_xxtestfuzz", "_testcapi", "_testinternalcapi", "_testbuffer", "_testimportmultiple",
        "_testmultiphase", "_ctypes_test", "_xxsubinterpreters", "turtle", "msvcrt", "winreg",
        "winsound", "nturl2path", "_winapi", "_msi", "msilib", "_overlapped", "_scproxy"}


def module_names():
    names = set()
    for top in sorted(sys.stdlib_module_names):
        if top in SKIP or top.startswith(SKIP_PREFIXES):
            continue
        try:
            mod = importlib.import_module(top)
        except BaseException:
            continue
        names.add(top)
        if hasattr(mod, "__path__"):
            for info in pkgutil.walk_packages(mod.__path__, top + ".", onerror=lambda n: None):
                n = info.name
                if n.endswith("__main__") or ".__main__" in n or n.split(".")[-1].startswith("test") \
                        or n in SKIP or n.startswith(SKIP_PREFIXES) or ".tests" in n or ".test." in n:
                    continue
                names.add(n)
    mods = {}
    for n in sorted(names):
        try:
            mods[n] = importlib.import_module(n)
        except BaseException:
            pass
    return mods


def sinks():
    import os, posix, marshal, _pickle, _posixsubprocess, _thread, _imp
    found = {}
    def add(obj, name):
        if obj is not None:
            found[id(obj)] = name
    for n in ("eval", "exec", "compile", "__import__", "breakpoint"):
        add(getattr(builtins, n), "builtins." + n)
    for n in dir(posix):
        if n == "system" or n.startswith(("exec", "spawn", "posix_spawn", "fork")) or n in ("popen",):
            add(getattr(posix, n), "posix." + n)
    add(_posixsubprocess.fork_exec, "_posixsubprocess.fork_exec")
    for n in ("loads", "load"):
        add(getattr(marshal, n), "marshal." + n)
        add(getattr(_pickle, n), "_pickle." + n)
    add(_pickle.Unpickler, "_pickle.Unpickler")
    add(_thread.start_new_thread, "_thread.start_new_thread")
    add(getattr(_thread, "start_joinable_thread", None), "_thread.start_joinable_thread")
    for n in ("exec_dynamic", "exec_builtin", "create_dynamic", "create_builtin"):
        add(getattr(_imp, n, None), "_imp." + n)
    try:
        import _ctypes
        add(_ctypes.dlopen, "_ctypes.dlopen")
    except ImportError:
        pass
    return found


def code_objects(code):
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from code_objects(c)


def static_attr(obj, name):
    try:
        return inspect.getattr_static(obj, name)
    except (AttributeError, TypeError, ValueError):
        return None


def unwrap(obj):
    if isinstance(obj, (staticmethod, classmethod)):
        return obj.__func__
    if isinstance(obj, property):
        return obj.fget
    return obj


class Graph:
    def __init__(self, mods, sink_ids):
        self.mods = mods
        self.sinks = sink_ids
        self.methods = {}  # module name -> method name -> [functions]
        for mname, mod in mods.items():
            table = {}
            for v in list(vars(mod).values()):
                if isinstance(v, type) and getattr(v, "__module__", None) == mname:
                    for base in v.__mro__:  # inherited methods too
                        for an, av in list(vars(base).items()):
                            f = unwrap(av)
                            if isinstance(f, types.FunctionType) and f not in table.get(an, []):
                                table.setdefault(an, []).append(f)
            self.methods[mname] = table

    def edges(self, obj):
        obj = unwrap(obj)
        if isinstance(obj, types.MethodType):
            obj = obj.__func__
        if isinstance(obj, type):
            out = []
            for n in ("__new__", "__init__", "__setstate__", "__call__"):
                v = unwrap(static_attr(obj, n))
                if isinstance(v, types.FunctionType) or id(v) in self.sinks:
                    out.append((obj.__qualname__ + "." + n, v))
            return out
        if not isinstance(obj, types.FunctionType):
            return []
        g = obj.__globals__
        mname = g.get("__name__", "")
        out = []
        for code in code_objects(obj.__code__):
            chain = None
            local = {}      # names bound by import statements in the body
            imported = None  # (label, object) just produced by IMPORT_NAME/FROM
            module = None
            for ins in dis.get_instructions(code):
                op, arg = ins.opname, ins.argval
                if op == "IMPORT_NAME":
                    module = arg
                    top = sys.modules.get(arg.split(".")[0])
                    imported = (arg.split(".")[0], top)
                    chain = None
                    continue
                if op == "IMPORT_FROM" and module is not None:
                    m = sys.modules.get(module)
                    v = static_attr(m, arg) if m is not None else None
                    if v is None:
                        v = sys.modules.get(module + "." + arg)
                    imported = (module + "." + arg, v)
                    continue
                if op in ("STORE_FAST", "STORE_NAME", "STORE_DEREF", "STORE_GLOBAL") and imported is not None:
                    if imported[1] is not None:
                        local[arg] = imported
                        out.append(imported)
                    imported = None
                    chain = None
                    continue
                imported = None
                if op in ("LOAD_GLOBAL", "LOAD_NAME"):
                    target = local[arg][1] if arg in local else g.get(arg, getattr(builtins, arg, None))
                    chain = (arg, target)
                    if target is not None:
                        out.append((arg, target))
                elif op in ("LOAD_FAST", "LOAD_DEREF") and arg in local:
                    chain = local[arg]
                elif op in ("LOAD_ATTR", "LOAD_METHOD") and isinstance(arg, str):
                    if chain is not None and isinstance(chain[1], (types.ModuleType, type)):
                        t = static_attr(chain[1], arg)
                        chain = (chain[0] + "." + arg, t)
                        if t is not None:
                            out.append(chain)
                            continue
                    chain = None
                    for f in self.methods.get(mname, {}).get(arg, []):
                        out.append((f.__qualname__, f))
                else:
                    chain = None
        return out

    def solve(self, roots):
        """Marks every node (function or class) reachable from roots that can
        reach a sink, with the next hop on a path to one."""
        nodes, edges = {}, {}
        todo = [unwrap(r) for r in roots]
        while todo:
            o = todo.pop()
            k = id(o)
            if k in nodes or k in self.sinks or not isinstance(o, (types.FunctionType, type)):
                continue
            nodes[k] = o
            es = []
            for label, t in self.edges(o):
                t = unwrap(t)
                if isinstance(t, types.MethodType):
                    t = t.__func__
                if id(t) in self.sinks or isinstance(t, (types.FunctionType, type)):
                    es.append((label, t))
                    todo.append(t)
            edges[k] = es
        rev = {}
        for k, es in edges.items():
            for label, t in es:
                rev.setdefault(id(t), []).append((k, label))
        self.next = {}
        queue = list(self.sinks)
        seen = set(queue)
        while queue:
            t = queue.pop(0)
            for k, label in rev.get(t, []):
                if k not in seen:
                    seen.add(k)
                    self.next[k] = (label, t)
                    queue.append(k)

    def path(self, obj):
        k = id(unwrap(obj))
        if k in self.sinks:
            return [self.sinks[k]]
        if k not in self.next:
            return None
        out = []
        for _ in range(64):
            label, t = self.next[k]
            if t in self.sinks:
                if label != self.sinks[t]:
                    out.append(label)
                out.append(self.sinks[t])
                return out
            out.append(label)
            k = t
        return out


def main():
    mods = module_names()
    g = Graph(mods, sinks())
    cands = []
    aliases = set()
    for mname, mod in mods.items():
        for attr, obj in sorted(vars(mod).items()):
            if isinstance(obj, types.ModuleType):
                if obj.__name__ != mname + "." + attr:
                    aliases.add("A\t%s.%s\t%s" % (mname, attr, obj.__name__))
                continue
            cands.append((mname + "." + attr, obj))
            if isinstance(obj, type) and getattr(obj, "__module__", None) == mname:
                for an, av in sorted(vars(obj).items()):
                    f = unwrap(av)
                    if isinstance(f, types.FunctionType):
                        cands.append((mname + "." + attr + "." + an, f))
    g.solve([o for _, o in cands])
    lines = set(aliases)
    for name, o in cands:
        p = g.path(o)
        if p:
            lines.add("R\t%s\t%s\t%s" % (name, p[-1], " -> ".join(p[:-1]) or "direct"))
    print("# Generated by internal/pickle/gen/reach.py with Python %s; do not edit." % sys.version.split()[0])
    for l in sorted(lines):
        print(l)


main()
