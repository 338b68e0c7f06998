"""Test driver around the seed's Python code (seed.py): signs, verifies,
canonicalizes, generates random documents, and serves the seed's MCPServer
over a tiny stdlib HTTP shell; signs and verifies Ed25519 (SPEC §7) with the
`cryptography` package over the seed's canonical bytes. Reads one JSON
request on stdin, writes one JSON answer on stdout (except `serve`, which
prints its port and runs).

usage: python3 peer.py OP < request.json
"""
import asyncio, base64, json, random, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

import seed


def signed_envelope(secret, client_id, server_id, tool, args, sign=None, **overrides):
    # The seed's client flow, minus its bug: sign the envelope that is sent.
    env = seed.MCPEnvelope(client_id=client_id, server_id=server_id, tool=tool, args=args or {}, signature="", **overrides)
    payload = env.model_dump()
    payload.pop("signature")
    payload["signature"] = sign(payload) if sign else seed._hmac_hex(secret, payload)
    return payload


def verify(secret, body):
    msg = json.loads(body)
    sig = msg.pop("signature", None)
    return isinstance(sig, str) and seed._hmac_hex(secret, msg) == sig


# ---------------------------------------------------------------- Ed25519 (SPEC §7)
def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def ed_private(text):
    assert text.startswith("ed25519-secret:"), "not an ed25519-secret: key"
    return Ed25519PrivateKey.from_private_bytes(b64url_decode(text[len("ed25519-secret:"):]))


def ed_public(text):
    assert text.startswith("ed25519:"), "not an ed25519: key"
    return Ed25519PublicKey.from_public_bytes(b64url_decode(text[len("ed25519:"):]))


def ed_public_text(public_key):
    return "ed25519:" + b64url(public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def ed_signer(secret_text):
    key = ed_private(secret_text)
    return lambda payload: key.sign(seed._canonical_json(payload)).hex()


def ed_verify(public_text, body):
    """128 lowercase hex over the seed's canonical bytes of the message without its signature."""
    msg = json.loads(body)
    sig = msg.pop("signature", None)
    if not (isinstance(sig, str) and len(sig) == 128 and sig == sig.lower()):
        return False
    try:
        ed_public(public_text).verify(bytes.fromhex(sig), seed._canonical_json(msg))
        return True
    except (InvalidSignature, ValueError):
        return False


def op_ed25519_keygen(req):
    out = []
    for _ in range(req["n"]):
        key = Ed25519PrivateKey.generate()
        seed_bytes = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        out.append({"secret": "ed25519-secret:" + b64url(seed_bytes), "public": ed_public_text(key.public_key())})
    return out


def op_ed25519_public(req):
    """The public key of each ed25519-secret: string, derived by cryptography."""
    return [ed_public_text(ed_private(text).public_key()) for text in req["secrets"]]


def op_ed25519_sign(req):
    out = []
    for item in req["items"]:
        args = json.loads(item["args_json"]) if "args_json" in item else item.get("args")
        env = signed_envelope(None, item["client_id"], item["server_id"], item["tool"], args, sign=ed_signer(item["secret"]))
        out.append(json.dumps(env))  # not the canonical text on purpose, as in op_sign
    return out


def op_ed25519_verify(req):
    results = []
    for item in req["items"]:
        shape = None
        if item.get("kind") == "response":
            try:
                seed.MCPResponse(**json.loads(item["body"]))
                shape = True
            except Exception:
                shape = False
        results.append({"verified": ed_verify(item["public"], item["body"]), "shape_ok": shape})
    return results


def op_sign(req):
    out = []
    for item in req["items"]:
        args = json.loads(item["args_json"]) if "args_json" in item else item.get("args")
        env = signed_envelope(item["secret"].encode(), item["client_id"], item["server_id"], item["tool"], args)
        # json.dumps with its default separators: not the canonical text on purpose.
        out.append(json.dumps(env))
    return out


def op_verify(req):
    results = []
    for item in req["items"]:
        ok = verify(item["secret"].encode(), item["body"])
        shape = None
        if item.get("kind") == "response":
            try:
                seed.MCPResponse(**json.loads(item["body"]))
                shape = True
            except Exception:
                shape = False
        results.append({"verified": ok, "shape_ok": shape})
    return results


def op_canonical(req):
    return [seed._canonical_json(json.loads(t)).decode() for t in req["texts"]]


def op_seed_handle(req):
    """Feeds request bodies to the seed's own MCPServer.handle, in one event loop."""
    server = seed.MCPServer(req["server_id"], req["server_secret"].encode())

    async def run():
        out = []
        for body in req["bodies"]:
            out.append(json.dumps(await server.handle(json.loads(body), req["client_secret"].encode())))
        return out

    return asyncio.run(run())


def op_http_client(req):
    """The seed's client flow against an HTTP server: every call signed with the
    seed's code, every answer verified with it (signature + MCPResponse shape).
    With `client_key`/`server_key` (ed25519-secret: / ed25519:) it signs and
    verifies Ed25519 instead of HMAC."""
    import time, urllib.request, urllib.error

    if "client_key" in req:
        sign, check = ed_signer(req["client_key"]), lambda body: ed_verify(req["server_key"], body)
    else:
        sign, check = None, lambda body: verify(req["server_secret"].encode(), body)

    def post(body):
        r = urllib.request.Request(req["url"], data=body.encode(), headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(r, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def call(tool, args):
        env = signed_envelope(req.get("client_secret", "").encode(), req["client_id"], req["server_id"], tool, args, sign=sign)
        status, body = post(json.dumps(env))
        msg = json.loads(body)
        try:
            seed.MCPResponse(**msg)
            shape_ok = True
        except Exception:
            shape_ok = False
        return {
            "tool": tool,
            "http": status,
            "verified": check(body),
            "shape_ok": shape_ok,
            "request_id_ok": msg.get("request_id") == env["request_id"],
            "status": msg.get("status"),
            "result": msg.get("result"),
        }

    out = [call(c["tool"], c.get("args")) for c in req["calls"]]
    job = call("start_long_task", {"seconds": 1, "payload": {"from": "python", "f": 6.0}})
    out.append(job)
    for _ in range(100):  # the seed's own polling loop, bounded
        polled = call("poll_job", {"job_id": job["result"]["job_id"]})
        out.append(polled)
        if polled["status"] != "running":
            break
        time.sleep(0.2)
    return out


# ---------------------------------------------------------------- random docs
CHARS = ["a", "b", "Z", "0", " ", "/", '"', "\\", "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", "\x7f",
         "\x80", "é", "ü", "中", "\u2028", "\ue000", "\uffff", "\U0001f600", "\U0001d11e", "\U0010ffff"]
KEYS = ["a", "b", "ab", "A", "", "é", "\uffff", "\ue000", "\U0001f600", "\U0001d11e", "z\U0001f600", "z\uffff", "key"]
FLOATS = [6.0, 1e-05, 1e16, 1.5e16, -0.0, 0.0, 1e21, 1e22, 0.0001, 0.00011, 1e15, 123456789012345678.0, 5e-324,
          1.7976931348623157e308, 0.1, 1 / 3, -2.5, 1e-7, 100.0, 9007199254740993.0]
INTS = [0, 1, -1, 2**53, 2**53 + 1, -(2**63), 10**30, 123456789]


def rand_float(r):
    k = r.random()
    if k < 0.3:
        return r.choice(FLOATS)
    if k < 0.7:
        return r.uniform(-1, 1) * 10 ** r.randint(-30, 30)
    while True:  # random bit patterns: any finite double
        import struct
        f = struct.unpack("<d", r.getrandbits(64).to_bytes(8, "little"))[0]
        if f == f and abs(f) != float("inf"):
            return f


def rand_value(r, depth):
    k = r.random()
    if depth < 4 and k < 0.25:
        return {r.choice(KEYS) + r.choice(["", "x", "\U0001f600"]): rand_value(r, depth + 1) for _ in range(r.randint(0, 5))}
    if depth < 4 and k < 0.4:
        return [rand_value(r, depth + 1) for _ in range(r.randint(0, 4))]
    if k < 0.55:
        return "".join(r.choice(CHARS) for _ in range(r.randint(0, 8)))
    if k < 0.75:
        return rand_float(r)
    if k < 0.88:
        return r.choice(INTS) if r.random() < 0.5 else r.randint(-10**6, 10**6)
    return r.choice([True, False, None])


def js_form(v):
    """What a JS signer holds after JSON.parse: integral floats below 1e21 become ints."""
    if isinstance(v, float):
        return int(v) if v.is_integer() and abs(v) < 1e21 else v
    if isinstance(v, dict):
        return {k: js_form(x) for k, x in v.items()}
    if isinstance(v, list):
        return [js_form(x) for x in v]
    return v


def js_safe(v):
    if isinstance(v, bool) or v is None or isinstance(v, (float, str)):
        return True
    if isinstance(v, int):
        return abs(v) <= 2**53 - 1
    if isinstance(v, dict):
        return all(js_safe(x) for x in v.values())
    return all(js_safe(x) for x in v)


def op_random_docs(req):
    r = random.Random(req["seed"])
    docs = []
    for _ in range(req["n"]):
        doc = {r.choice(KEYS): rand_value(r, 1) for _ in range(r.randint(1, 6))}
        text = json.dumps(doc, ensure_ascii=r.random() < 0.5, indent=r.choice([None, 1]))
        js = js_form(doc)
        docs.append({
            "text": text,
            "canonical": seed._canonical_json(doc).decode(),
            "js_safe": js_safe(js),
            "js_text": json.dumps(js),
            "js_canonical": seed._canonical_json(js).decode(),
        })
    return docs


# ---------------------------------------------------------------- HTTP shell
def op_serve(req):
    server = seed.MCPServer(req["server_id"], req["server_secret"].encode())
    client_secret = req["client_secret"].encode()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                result = asyncio.run_coroutine_threadsafe(server.handle(json.loads(body), client_secret), loop).result()
                out, status = json.dumps(result).encode(), 200
            except Exception as e:  # the seed crashes on bad args or unknown jobs
                out, status = f"seed server error: {type(e).__name__}".encode(), 500
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(json.dumps({"port": httpd.server_address[1]}), flush=True)
    # Stops by itself when the test closes stdin (or after an hour at most).
    threading.Thread(target=lambda: (sys.stdin.read(), httpd.shutdown()), daemon=True).start()
    timer = threading.Timer(3600, httpd.shutdown)
    timer.daemon = True
    timer.start()
    httpd.serve_forever()
    return None


OPS = {"sign": op_sign, "verify": op_verify, "canonical": op_canonical, "random-docs": op_random_docs, "seed-handle": op_seed_handle, "http-client": op_http_client,
       "ed25519-keygen": op_ed25519_keygen, "ed25519-public": op_ed25519_public, "ed25519-sign": op_ed25519_sign, "ed25519-verify": op_ed25519_verify}

if __name__ == "__main__":
    op = sys.argv[1]
    if op == "serve":
        op_serve(json.loads(sys.argv[2]))
        sys.exit(0)
    print(json.dumps(OPS[op](json.loads(sys.stdin.read()))))
