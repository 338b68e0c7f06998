"""Python's view of JSON texts and values, for the fuzz suites: a long-lived
process that reads one JSON request per line on stdin and writes one JSON
answer per line on stdout.

  {"op": "parse", "texts": [...]}   -> per text ["ok", canonical] or ["error", reason]
  {"op": "dump", "models": [...]}   -> per model its canonical text

"canonical" is the seed's _canonical_json, i.e. json.dumps(sort_keys=True,
separators=(",", ":")). "parse" applies json.loads and then the limits SPEC
§2 adds to it (duplicate keys, NaN/Infinity, overflow to infinity, lone
surrogates, nesting over 64, number lexemes over 64 characters), so a text
is "ok" exactly when an smcp receiver must accept it.

A model is a JSON value tagged with its Python type:
["n"] ["b", bool] ["i", "digits"] ["f", "repr"] ["s", str] ["a", [models]] ["o", [[key, model], ...]]
"""
import json, math, os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
import seed  # noqa: E402

MAX_DEPTH = 64
MAX_NUMBER = 64


class Refused(Exception):
    pass


def pairs(items):
    keys = [k for k, _ in items]
    if len(set(keys)) != len(keys):
        raise Refused("duplicate key")
    return dict(items)


def parse_int(lexeme):
    if len(lexeme) > MAX_NUMBER:
        raise Refused("number too long")
    return int(lexeme)


def parse_float(lexeme):
    if len(lexeme) > MAX_NUMBER:
        raise Refused("number too long")
    value = float(lexeme)
    if math.isinf(value):
        raise Refused("overflow")
    return value


def parse_constant(name):
    raise Refused("not JSON: " + name)


def has_surrogate(s):
    return any(0xD800 <= ord(c) <= 0xDFFF for c in s)


def check(value, depth):
    """Depth of containers (the top-level container is 1) and lone surrogates."""
    if isinstance(value, str):
        if has_surrogate(value):
            raise Refused("lone surrogate")
        return
    if isinstance(value, (list, dict)):
        if depth + 1 > MAX_DEPTH:
            raise Refused("nesting too deep")
        items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
        for key, item in items:
            if key is not None and has_surrogate(key):
                raise Refused("lone surrogate")
            check(item, depth + 1)


def op_parse(request):
    out = []
    for text in request["texts"]:
        try:
            value = json.loads(text, object_pairs_hook=pairs, parse_int=parse_int, parse_float=parse_float,
                               parse_constant=parse_constant)
            check(value, 0)
            out.append(["ok", seed._canonical_json(value).decode()])
        except Refused as e:
            out.append(["error", str(e)])
        except RecursionError:
            out.append(["error", "recursion"])
        except ValueError as e:  # json.JSONDecodeError is a ValueError
            out.append(["error", "syntax: " + str(e)[:80]])
    return out


def build(model):
    tag = model[0]
    if tag == "n":
        return None
    if tag == "b":
        return bool(model[1])
    if tag == "i":
        return int(model[1])
    if tag == "f":
        return float(model[1])
    if tag == "s":
        return model[1]
    if tag == "a":
        return [build(m) for m in model[1]]
    if tag == "o":
        return {k: build(m) for k, m in model[1]}
    raise ValueError("bad model tag " + repr(tag))


def op_dump(request):
    return [seed._canonical_json(build(m)).decode() for m in request["models"]]


OPS = {"parse": op_parse, "dump": op_dump}

if __name__ == "__main__":
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = {"ok": OPS[request["op"]](request)}
        except Exception as e:  # a broken request is the test's bug: report it, keep serving
            answer = {"error": repr(e)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
