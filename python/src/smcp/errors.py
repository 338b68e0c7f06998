"""The two error types: SmcpError (a protocol error) and SmcpUsageError (local misuse)."""

from __future__ import annotations

from typing import Any, Literal

#: Every error code an smcp server puts on the wire (SPEC §5), plus the two a
#: job may end in (`cancelled`, `timeout`). `timeout` is also what a client's
#: own wait deadline raises.
ERROR_CODES = frozenset(
    {
        "bad_envelope",
        "unknown_client",
        "bad_signature",
        "wrong_server",
        "stale",
        "replay",
        "unknown_tool",
        "bad_args",
        "unknown_job",
        "too_large",
        "rate_limited",
        "forbidden",
        "tool_failed",
        "bad_output",
        "unavailable",
        "internal",
        "cancelled",
        "timeout",
    }
)

Origin = Literal["server", "local"]


class SmcpError(Exception):
    """A protocol error, with its code.

    ``origin`` is ``"server"`` for a verified error response (the server said
    so, and signed it) and ``"local"`` when this client decided: an answer
    that failed verification (``received`` holds its bytes), a transport
    failure (``unavailable``), an answer over the size cap (``too_large``)
    or a wait that ran out of time (``timeout``).
    """

    code: str
    message: str
    details: Any
    origin: Origin
    retry_after_ms: int | None
    received: bytes | None
    response: Any

    def __init__(
        self,
        code: str,
        message: str,
        *,
        origin: Origin = "local",
        details: Any = None,
        received: bytes | None = None,
        response: Any = None,
    ) -> None:
        issues = issue_messages(details)
        # What to fix, in the server's words (SPEC §5: "numbers: required"), right in the exception's text.
        super().__init__(f"{code}: {message}" + (f" ({'; '.join(issues)})" if issues else ""))
        self.code = code
        self.message = message
        self.origin = origin
        self.details = details
        self.received = received
        #: The verified :class:`smcp.Response` behind a server error, else None.
        self.response = response
        self.retry_after_ms = _retry_after(code, details)

    def __reduce__(self) -> Any:
        # Keyword-only fields: pickle (multiprocessing, concurrent.futures) needs to be told how to rebuild.
        return (_rebuild, (self.code, self.message, self.origin, self.details, self.received, self.response))


def _rebuild(code: str, message: str, origin: Origin, details: Any, received: bytes | None, response: Any) -> SmcpError:
    return SmcpError(code, message, origin=origin, details=details, received=received, response=response)


class SmcpUsageError(ValueError):
    """Local misuse: bad configuration or a wrong argument. Never sent on the wire.

    Messages name the problem and the fix, never a secret.
    """


def issue_messages(details: Any) -> list[str]:
    """The readable messages of a ``bad_args`` answer's issues (at most 20, control characters removed)."""
    if not isinstance(details, dict) or not isinstance(details.get("issues"), list):
        return []
    messages = [i["message"] for i in details["issues"] if isinstance(i, dict) and isinstance(i.get("message"), str)]
    return ["".join(c if c.isprintable() else " " for c in m)[:300] for m in messages[:20]]


def _retry_after(code: str, details: Any) -> int | None:
    # Only a rate_limited answer carries it (SPEC §5); a non-integer value is ignored, not trusted.
    if code != "rate_limited" or not isinstance(details, dict):
        return None
    value = details.get("retry_after_ms")
    if type(value) is int and value >= 0:
        return value
    return None
