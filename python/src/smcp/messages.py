"""Messages (SPEC §1): building signed envelopes and verifying responses (SPEC §3, §7)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import canonical
from .errors import ERROR_CODES, SmcpError
from .keys import SigningKey, VerifyKey, verify_signature

PROTOCOL_VERSION = "mcp/0.1"
STATUSES = ("ok", "accepted", "running", "done", "error")
RESPONSE_FIELDS = ("v", "request_id", "ts_ms", "ok", "server_id", "status", "result", "error", "signature")
#: The largest integer JavaScript holds exactly; a ts_ms beyond it is refused, as the TypeScript client does.
MAX_SAFE_INTEGER = 2**53 - 1
#: The most validation issues listed in an error's details; the rest are counted.
MAX_ISSUES = 20


@dataclass(frozen=True)
class Envelope:
    """A signed request: its fields (with ``signature``) and the exact bytes to send (the canonical form)."""

    fields: dict[str, Any]
    body: bytes

    @property
    def request_id(self) -> str:
        """The envelope's ``request_id``; the answer must carry the same."""
        request_id: str = self.fields["request_id"]
        return request_id


@dataclass(frozen=True)
class Response:
    """A verified response: signed by the server's key, for this request, from the expected server, fresh."""

    request_id: str
    ts_ms: int
    ok: bool
    server_id: str
    status: str
    result: dict[str, Any] | None
    error: str | None
    signature: str
    v: str = PROTOCOL_VERSION
    #: The body exactly as received (what the signature covers, in canonical form).
    body: bytes = field(default=b"", repr=False)


def build_envelope(
    *,
    key: SigningKey,
    client_id: str,
    server_id: str,
    tool: str,
    args: dict[str, Any],
    ts_ms: int,
    request_id: str | None = None,
    nonce: str | None = None,
) -> Envelope:
    """Signs an envelope over its canonical form and returns it with the canonical body to send."""
    fields: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "request_id": request_id if request_id is not None else str(uuid.uuid4()),
        "ts_ms": ts_ms,
        "client_id": client_id,
        "server_id": server_id,
        "tool": tool,
        "args": args,
        "nonce": nonce if nonce is not None else str(uuid.uuid4()),
    }
    fields["signature"] = key.sign(canonical.dumps(fields))
    return Envelope(fields, canonical.dumps(fields))


def _is_str(x: Any) -> bool:
    return isinstance(x, str)


# Per field: the check, and the issue code the TypeScript client's schema (zod) reports when it fails.
_FIELD_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "v": (lambda x: x == PROTOCOL_VERSION, "invalid_value"),
    "request_id": (_is_str, "invalid_type"),
    # A safe integer (JavaScript's Number.isSafeInteger), as the TypeScript client requires.
    "ts_ms": (lambda x: type(x) is int and abs(x) <= MAX_SAFE_INTEGER, "custom"),
    "ok": (lambda x: type(x) is bool, "invalid_type"),
    "server_id": (_is_str, "invalid_type"),
    "status": (lambda x: isinstance(x, str) and x in STATUSES, "invalid_value"),
    "result": (lambda x: x is None or isinstance(x, dict), "custom"),
    "error": (lambda x: x is None or isinstance(x, str), "invalid_type"),
    "signature": (_is_str, "invalid_type"),
}


def shape_issues(message: Any) -> dict[str, Any] | None:
    """What is wrong with a parsed response's shape (SPEC §1), or None when it is valid.

    In the TypeScript client's form: ``{"issues": [{"path", "code"}, ...], "more": n}``,
    at most 20 issues, paths naming only response fields, nothing taken from the answer.
    """
    if not isinstance(message, dict):
        return _details([{"path": [], "code": "invalid_type"}])
    if isinstance(message.get("ts_ms"), float):
        # Written as a float lexeme (1795304232049.0, 1.795e12): refused on its own, before the schema.
        return _details([{"path": ["ts_ms"], "code": "invalid_type"}])
    issues: list[dict[str, Any]] = []
    for name, (check, code) in _FIELD_CHECKS.items():
        if name not in message:
            issues.append({"path": [name], "code": "invalid_type"})
        elif not check(message[name]):
            issues.append({"path": [name], "code": code})
    if any(k not in _FIELD_CHECKS for k in message):
        issues.append({"path": [], "code": "unrecognized_keys"})  # which keys is not repeated: text from the answer
    if not issues and message["ok"] != (message["status"] != "error"):
        issues.append({"path": [], "code": "custom"})  # ok must be false exactly when status is error
    return _details(issues) if issues else None


def _details(issues: list[dict[str, Any]]) -> dict[str, Any]:
    return {"issues": issues[:MAX_ISSUES], "more": max(0, len(issues) - MAX_ISSUES)}


def verify_response(
    body: bytes,
    *,
    request_id: str,
    server_id: str,
    keys: Sequence[VerifyKey],
    now_ms: int,
    freshness_ms: int,
    http_status: int | None = None,
) -> Response:
    """Accepts an answer only per SPEC §3 (in the TypeScript client's order): JSON → shape →
    signature → server_id → request_id → freshness. Anything else raises SmcpError with
    origin "local" and ``received`` = the body; never a result."""
    context = "" if http_status is None else f" (HTTP {http_status})"

    def reject(code: str, text: str, details: Any = None) -> SmcpError:
        return SmcpError(code, text, origin="local", details=details, received=body)

    try:
        message = canonical.loads(body)
    except canonical.JsonRejected as error:
        raise reject("bad_envelope", f"the answer is not a JSON response{context}: {error}") from None
    issues = shape_issues(message)
    if issues is not None:
        raise reject("bad_envelope", f"the answer is not a signed mcp/0.1 response{context}", issues)
    if not verify_signature(keys, canonical.canonical_without(message), message["signature"]):
        raise reject("bad_signature", "the response signature does not verify with the server's key")
    if message["server_id"] != server_id:
        # The id is the signer's own claim, already verified; still, it is cut short.
        raise reject("wrong_server", f"the response comes from '{message['server_id'][:256]}', not '{server_id}'")
    if message["request_id"] != request_id:
        text = "the response answers another request"
        if message["request_id"] == "" and isinstance(message["error"], str):
            # The server could not read this request's id (e.g. too_large); say what it said, still refusing it.
            text += f" (one the server could not read; it says: {message['error'][:200]})"
        raise reject("bad_envelope", text)
    if abs(now_ms - message["ts_ms"]) > freshness_ms:
        raise reject("stale", "the response's ts_ms is outside the freshness window")
    return Response(**message, body=bytes(body))


def result_of(response: Response) -> dict[str, Any]:
    """The result of a verified response, or the SmcpError (origin "server") it reports."""
    if response.ok:
        return response.result if response.result is not None else {}
    raise server_error(response)


def server_error(response: Response) -> SmcpError:
    """The SmcpError a verified error response stands for. An unknown code is ``internal``."""
    result = response.result or {}
    code = result.get("code")
    text = response.error if response.error is not None else "internal: error response without a message"
    prefix = text.find(": ")
    message = text[prefix + 2 :] if prefix >= 0 else text
    return SmcpError(
        code if isinstance(code, str) and code in ERROR_CODES else "internal",
        message,
        origin="server",
        details=result.get("details"),
        response=response,
    )
