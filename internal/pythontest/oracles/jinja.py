# Reference side of the chat-template differential tests: what Jinja2
# itself computes when it renders each template (in its sandbox, so that
# nothing escapes): every attribute and item name the template asks for,
# and the rendered text.
#
# In:  {"template": "..."}
# Out: {"names": [...], "output": "..." or null, "error": "..."}
import json, sys
from jinja2.sandbox import ImmutableSandboxedEnvironment

class Recording(ImmutableSandboxedEnvironment):
    def getattr(self, obj, attribute):
        if isinstance(attribute, str):
            NAMES.append(attribute)
        return super().getattr(obj, attribute)
    def getitem(self, obj, argument):
        if isinstance(argument, str):
            NAMES.append(argument)
        return super().getitem(obj, argument)

env = Recording(extensions=["jinja2.ext.loopcontrols"])
# |attr(name) calls getattr directly, not the environment's: record it too.
_attr = env.filters["attr"]
def _recording_attr(environment, obj, name):
    if isinstance(name, str):
        NAMES.append(name)
    return _attr(environment, obj, name)
_recording_attr.jinja_pass_arg = _attr.jinja_pass_arg
env.filters["attr"] = _recording_attr
env.globals["raise_exception"] = lambda m: ""
CONTEXT = {
    "messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}],
    "x": "x", "xs": ["a", "b"], "add_generation_prompt": True, "bos_token": "<s>",
}
for line in sys.stdin:
    req = json.loads(line)
    NAMES = []
    out = {"names": NAMES, "output": None, "error": None}
    try:
        out["output"] = env.from_string(req["template"]).render(**CONTEXT)
    except Exception as e:
        out["error"] = type(e).__name__ + ": " + str(e)[:160]
    out["names"] = NAMES
    print(json.dumps(out), flush=True)
