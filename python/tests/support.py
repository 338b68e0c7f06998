"""Test support: a real `smcp serve`, a scriptable fake HTTP server, and signing done
independently of the package under test (the seed's own `_canonical_json` / `_hmac_hex`,
and `cryptography` for Ed25519)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# The CLI under test: this checkout's build (SMCP_TEST_CLI may name another build of it).
CLI = os.environ.get("SMCP_TEST_CLI") or os.path.join(REPO, "dist", "cli", "main.js")
INTEROP = os.path.join(REPO, "test", "interop")
if INTEROP not in sys.path:
    sys.path.insert(0, INTEROP)

import seed  # noqa: E402  (the seed tutorial's own code: the reference peer)

SERVER_ID = "py-test-server"
SERVER_SECRET = "py-test-server-secret-0123456789"
CLIENT_ID = "py-agent"
CLIENT_SECRET = "py-agent-secret-0123456789abcdef"
OTHER_ID = "py-other"
OTHER_SECRET = "py-other-secret-0123456789abcdef"


def now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------- signing (independent of smcp)


def hmac_sign(secret: str | bytes, payload: dict[str, Any]) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return seed._hmac_hex(key, payload)


def ed25519_pair() -> tuple[Any, str, str]:
    """A new key pair: (private key object, "ed25519-secret:…", "ed25519:…")."""
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    private = Ed25519PrivateKey.generate()
    seed_bytes = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return private, "ed25519-secret:" + b64(seed_bytes), "ed25519:" + b64(public)


@dataclass
class Signer:
    """How the fake server signs: an HMAC secret, or an Ed25519 private key object."""

    secret: str | None = None
    private: Any = None

    def sign(self, payload: dict[str, Any]) -> str:
        if self.private is not None:
            return self.private.sign(seed._canonical_json(payload)).hex()
        assert self.secret is not None
        return hmac_sign(self.secret, payload)


def signed(payload: dict[str, Any], signer: Signer) -> dict[str, Any]:
    body = {k: v for k, v in payload.items() if k != "signature"}
    return {**body, "signature": signer.sign(body)}


def response_for(
    request: dict[str, Any] | None,
    *,
    status: str = "ok",
    result: Any = None,
    error: str | None = None,
    server_id: str = SERVER_ID,
    ts_ms: int | None = None,
    ok: bool | None = None,
) -> dict[str, Any]:
    """The fields of a response to `request` (unsigned)."""
    return {
        "v": "mcp/0.1",
        "request_id": (request or {}).get("request_id", ""),
        "ts_ms": now_ms() if ts_ms is None else ts_ms,
        "ok": (status != "error") if ok is None else ok,
        "server_id": server_id,
        "status": status,
        "result": result,
        "error": error,
    }


def error_for(request: dict[str, Any] | None, code: str, details: Any = None, **kw: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"code": code}
    if details is not None:
        result["details"] = details
    return response_for(request, status="error", result=result, error=f"{code}: said the fake", **kw)


# ---------------------------------------------------------------- fake HTTP server


@dataclass
class Reply:
    """A scripted answer. `body` goes out as is; the other fields misbehave on purpose."""

    body: bytes = b""
    status: int = 200
    content_length: int | None = None  # a lie about the length, if set
    chunked: bool = False
    trickle: float | None = None  # seconds between single bytes
    hang: bool = False  # never answer (until the fake stops)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    at: float
    body: bytes
    message: Any


Handler = Callable[[Any], Any]


class _Listener(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connect at once in some tests


class FakeServer:
    """An HTTP server answering POSTs with whatever `handler(request)` returns:
    a dict (signed with `signer`, sent as JSON), raw bytes, or a Reply."""

    def __init__(self, handler: Handler, signer: Signer | None = None) -> None:
        self.handler = handler
        self.signer = signer or Signer(secret=SERVER_SECRET)
        self.seen: list[Seen] = []
        self.stopping = threading.Event()
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    message = json.loads(body)
                except ValueError:
                    message = None
                fake.seen.append(Seen(time.monotonic(), body, message))
                out = fake.handler(message)
                if isinstance(out, dict):
                    out = Reply(json.dumps(signed(out, fake.signer)).encode())
                elif isinstance(out, (bytes, str)):
                    out = Reply(out.encode() if isinstance(out, str) else out)
                fake._send(self, out)

        self.httpd = _Listener(("127.0.0.1", 0), _Handler)
        # A short poll interval: shutdown() waits for it, once per test.
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/mcp"

    def tools_called(self) -> list[str]:
        return [s.message.get("tool") for s in self.seen if isinstance(s.message, dict)]

    def _send(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        if reply.hang:
            self.stopping.wait(30)
            return
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "application/json")
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        if reply.chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            length = len(reply.body) if reply.content_length is None else reply.content_length
            handler.send_header("Content-Length", str(length))
        handler.send_header("Connection", "close")
        handler.end_headers()
        try:
            if reply.chunked:
                step = 65536
                for i in range(0, len(reply.body), step):
                    part = reply.body[i : i + step]
                    handler.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                handler.wfile.write(b"0\r\n\r\n")
            elif reply.trickle is not None:
                for i in range(len(reply.body)):
                    if self.stopping.wait(reply.trickle):
                        return
                    handler.wfile.write(reply.body[i : i + 1])
                    handler.wfile.flush()
            else:
                handler.wfile.write(reply.body)
        except OSError:
            pass  # the client hung up (e.g. it cut off a too-large answer)
        handler.close_connection = True

    def close(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------- a fake job server


class Jobs:
    """A fake job server: jobs follow a script of (seconds, progress | "done"); long-poll if advertised."""

    def __init__(
        self, *, long_poll: bool = False, script: list[tuple[float, Any]] | None = None, refuse_wait_ms: bool = False
    ) -> None:
        self.long_poll = long_poll
        self.refuse_wait_ms = refuse_wait_ms
        self.script = script if script is not None else [(0.3, {"done": 1}), (0.6, {"done": 2}), (0.9, "done")]
        self.changed = threading.Condition()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.rate_limit_next = 0
        self.stop = threading.Event()

    def advance(self, job_id: str) -> None:
        began = time.monotonic()
        for at, step in self.script:
            if self.stop.wait(max(0.0, began + at - time.monotonic())):
                return
            with self.changed:
                job = self.jobs[job_id]
                if job["state"] != "running":
                    return
                if step == "done":
                    job.update(state="done")
                else:
                    job["progress"] = step
                job["version"] += 1
                self.changed.notify_all()

    def __call__(self, req: dict[str, Any]) -> dict[str, Any]:
        tool, args = req["tool"], req["args"]
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            return error_for(req, "rate_limited", {"retry_after_ms": 300})
        if tool == "server_identity":
            caps = {"async": True, **({"long_poll": True} if self.long_poll else {})}
            return response_for(req, result={"server_id": SERVER_ID, "fingerprint": "k", "capabilities": caps})
        if tool == "start_long_task":
            job_id = uid()
            self.jobs[job_id] = {"state": "running", "progress": None, "version": 0, "payload": args.get("payload", {})}
            threading.Thread(target=self.advance, args=(job_id,), daemon=True).start()
            return response_for(req, status="accepted", result={"job_id": job_id})
        if tool == "cancel_job":
            with self.changed:
                job = self.jobs[args["job_id"]]
                if job["state"] == "running":
                    job.update(state="cancelled", version=job["version"] + 1)
                self.changed.notify_all()
            return response_for(req, result={"job_id": args["job_id"], "state": job["state"], "cancelled": True})
        assert tool == "poll_job"
        if "wait_ms" in args and self.refuse_wait_ms:
            return error_for(req, "bad_args", [{"path": ["wait_ms"], "code": "unrecognized_keys", "message": "m"}])
        with self.changed:
            job = self.jobs.get(args["job_id"])
            if job is None:
                return error_for(req, "unknown_job")
            version = job["version"]
            if self.long_poll and args.get("wait_ms", 0) > 0:
                self.changed.wait_for(lambda: job["version"] != version or self.stop.is_set(), args["wait_ms"] / 1000)
            if job["state"] == "done":
                return response_for(req, status="done", result=job["payload"])
            if job["state"] == "cancelled":
                cancelled = {"job_id": args["job_id"], "code": "cancelled"}
                return response_for(req, status="error", result=cancelled, error="cancelled: cancelled")
            running = {"job_id": args["job_id"], "state": "running", "progress": job["progress"]}
            return response_for(req, status="running", result=running)


# ---------------------------------------------------------------- real server


class RealServer:
    """`node dist/cli/main.js serve` on an ephemeral port, stopped by its own pid."""

    def __init__(self, args: list[str], cwd: str | None = None, env: dict[str, str] | None = None) -> None:
        if not os.path.exists(CLI):
            raise RuntimeError(f"{CLI} is missing: run `npm run build` first")
        self.output: list[str] = []
        self.proc = subprocess.Popen(
            ["node", CLI, "serve", *args],
            cwd=cwd,
            env={"PATH": os.environ.get("PATH", ""), **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready = threading.Event()
        self.url = ""

        def read_stdout() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line)
                if line.startswith("listening on ") and not ready.is_set():
                    self.url = line.split("listening on ", 1)[1].strip() + "/mcp"
                    ready.set()
            ready.set()  # exited

        def read_stderr() -> None:  # drained, so a chatty server never blocks on a full pipe
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.output.append(line)

        threading.Thread(target=read_stdout, daemon=True).start()
        threading.Thread(target=read_stderr, daemon=True).start()
        if not ready.wait(30) or not self.url:
            self.stop()
            raise RuntimeError("smcp serve did not start:\n" + "".join(self.output))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def keygen_ed25519() -> dict[str, str]:
    """A key pair from `smcp keygen --alg ed25519 --json`: {"alg", "secret", "public"}."""
    out = subprocess.run(["node", CLI, "keygen", "--alg", "ed25519", "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed_envelope(
    secret: str, client_id: str, server_id: str, tool: str, args: dict[str, Any], **overrides: Any
) -> dict[str, Any]:
    """An envelope signed by the seed's code (as test/interop/peer.py does)."""
    env = seed.MCPEnvelope(client_id=client_id, server_id=server_id, tool=tool, args=args, signature="", **overrides)
    payload = env.model_dump()
    payload.pop("signature")
    payload["signature"] = seed._hmac_hex(secret.encode(), payload)
    return payload


def uid() -> str:
    return str(uuid.uuid4())


def hmac_hex(secret: bytes, data: bytes) -> str:
    return hmac.new(secret, data, hashlib.sha256).hexdigest()


def fake_client(server: FakeServer, cls: Any = None, **options: Any) -> Any:
    """A client of the package under test, pointed at a fake server (HMAC keys by default)."""
    import smcp

    kwargs: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "server_id": SERVER_ID,
        "server_key": SERVER_SECRET,
        "timeout": 5.0,
        **options,
    }
    return (cls or smcp.Client)(server.url, **kwargs)
