"""Transports: what carries a signed body to a server and brings back the answer's bytes, unverified.

A client takes any object with the :class:`Transport` shape (or, for
:class:`smcp.AsyncClient`, :class:`AsyncTransport`); the default is
:class:`HttpTransport` (SPEC §6). Whatever comes back is verified by the
client, so a transport needs no trust: a forged answer is refused.

The HTTP transport is bounded both ways: the answer is read up to a size cap (8 MiB by default)
and the whole exchange (connect, send, headers, body) must end within the
timeout: every socket operation is given only what is left of it, so a
server that trickles bytes or never answers is given up on in time.
"""

from __future__ import annotations

import asyncio
import http.client
import importlib
import io
import socket
import time
from dataclasses import dataclass
from typing import Any, Protocol, cast
from urllib.parse import urlsplit, urlunsplit

from .errors import SmcpError, SmcpUsageError

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
_CHUNK = 64 * 1024


# Trace context (SPEC §10) only when opentelemetry-api is installed: an optional dependency, so it is
# imported by name (typed Any) and mypy checks the same way whether or not it is installed.
_propagate: Any
try:
    _propagate = importlib.import_module("opentelemetry.propagate")
except ImportError:  # pragma: no cover - depends on the environment
    _propagate = None


def trace_headers() -> dict[str, str]:
    """The W3C ``traceparent``/``tracestate`` of the active span, when opentelemetry-api is installed and a span is active."""
    if _propagate is None:
        return {}
    carrier: dict[str, str] = {}
    _propagate.inject(carrier)
    return {k: v for k, v in carrier.items() if k in ("traceparent", "tracestate")}


@dataclass(frozen=True)
class Endpoint:
    """Where requests go: scheme, host, port and path (``/mcp`` when the URL has none)."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def url(self) -> str:
        """The URL as shown in messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return urlunsplit((self.scheme, f"{host}:{self.port}", self.path, "", ""))


def endpoint(url: str) -> Endpoint:
    """Parses a server URL; ``http://host:port`` becomes ``http://host:port/mcp``."""
    hint = "use e.g. http://127.0.0.1:8787/mcp"
    if not isinstance(url, str):
        raise SmcpUsageError(f"the server URL must be a string; {hint}")
    shown = f"'{url[:80]}'" if "@" not in url else "the server URL"  # user:password@ is never quoted
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise SmcpUsageError(f"{shown} is not a URL; {hint}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SmcpUsageError(f"{shown} is not an http(s) URL; {hint}")
    if parts.username is not None or parts.password is not None:
        # Not quoted: it holds a password. Signatures authenticate; HTTP credentials would be dropped.
        raise SmcpUsageError(f"the server URL carries user:password, which smcp does not send; remove it ({hint})")
    path = parts.path if parts.path not in ("", "/") else "/mcp"
    if parts.query:
        path += "?" + parts.query
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return Endpoint(parts.scheme, parts.hostname, port, path)


@dataclass(frozen=True)
class Answer:
    """What came back: the HTTP status and the body's bytes as received."""

    status: int
    body: bytes


class Transport(Protocol):
    """Carries one request: sends ``body`` (the signed envelope's exact bytes), returns the answer.

    ``timeout`` (seconds) bounds the whole exchange; the client always gives
    it (longer for a long poll). A failure to exchange should raise
    :class:`~smcp.SmcpError` ``unavailable``; anything else raised reaches the
    caller as is. The answer's ``status`` is the HTTP status, or any number a
    non-HTTP transport finds useful (200 when there is none): the client
    decides on the body alone, and uses a 404 only to explain a failure.
    """

    def send(self, body: bytes, timeout: float) -> Answer: ...


class AsyncTransport(Protocol):
    """:class:`Transport` as a coroutine, for :class:`smcp.AsyncClient`."""

    async def send(self, body: bytes, timeout: float) -> Answer: ...


class ThreadedTransport:
    """An :class:`AsyncTransport` running a blocking :class:`Transport` in a worker thread.

    A cancelled coroutine leaves at most one exchange finishing in the
    background, never longer than its timeout.
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def send(self, body: bytes, timeout: float) -> Answer:
        """Runs the blocking ``send`` in a worker thread."""
        return await asyncio.to_thread(self.transport.send, body, timeout)


class HttpTransport:
    """POSTs one request per connection (``Connection: close``), so it is safe to share between threads."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        headers: dict[str, str] | None = None,
    ) -> None:
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise SmcpUsageError("timeout must be a positive number of seconds")
        if not (type(max_response_bytes) is int and max_response_bytes > 0):
            raise SmcpUsageError("max_response_bytes must be a positive integer")
        self.endpoint = endpoint(url)
        self.timeout = float(timeout)
        self.max_response_bytes = max_response_bytes
        self._headers = {**(headers or {}), "Content-Type": "application/json", "Connection": "close"}

    def send(self, body: bytes, timeout: float | None = None) -> Answer:
        """Sends ``body``; returns the answer or raises SmcpError (``unavailable``, ``too_large``; origin local)."""
        limit = self.timeout if timeout is None else max(0.001, timeout)
        where = self.endpoint.url
        deadline = time.monotonic() + limit
        ep = self.endpoint
        conn_type = http.client.HTTPSConnection if ep.scheme == "https" else http.client.HTTPConnection
        conn = conn_type(ep.host, ep.port, timeout=limit)
        # The answer is read through a reader that gives each recv only what is left of the deadline,
        # so a server that trickles bytes cannot stretch the exchange.
        # The stand-in has only makefile(), all HTTPResponse uses of a socket: hence the cast.
        conn.response_class = lambda sock, *args, **kwargs: http.client.HTTPResponse(  # type: ignore[assignment]
            cast(socket.socket, _DeadlineSocket(sock, deadline)), *args, **kwargs
        )
        response: http.client.HTTPResponse | None = None
        try:
            conn.connect()
            _remaining(conn.sock, deadline)
            try:
                headers = {**self._headers, **trace_headers()}  # SPEC §10: beside the envelope, never in it
                conn.request("POST", ep.path, body=body, headers=headers)  # sendall: bounded as a whole
            except (BrokenPipeError, ConnectionResetError):
                # A server may answer (e.g. too_large) and close before reading the whole body: read its answer.
                pass
            response = conn.getresponse()
            declared = response.getheader("Content-Length")
            if declared is not None and declared.strip().isdigit() and int(declared) > self.max_response_bytes:
                raise self._too_large()
            chunks: list[bytes] = []
            size = 0
            while not response.isclosed():  # http.client closes it after the last byte
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise self._too_large()
                chunks.append(chunk)
            if response.length:
                # read(amt) does not raise IncompleteRead when the connection ends before Content-Length.
                raise http.client.IncompleteRead(b"")
            return Answer(response.status, b"".join(chunks))
        except SmcpError:
            raise
        except (OSError, http.client.HTTPException) as error:
            timed_out = isinstance(error, (socket.timeout, TimeoutError))
            reason = f"no answer within {limit:g} s" if timed_out else _describe(error)
            raise SmcpError("unavailable", f"could not reach {where}: {reason}") from None
        finally:
            if response is not None:
                response.close()
            conn.close()

    def _too_large(self) -> SmcpError:
        return SmcpError("too_large", f"the answer exceeds {self.max_response_bytes} bytes")


def _remaining(sock: socket.socket | None, deadline: float) -> None:
    """Sets the socket's timeout to what is left of the deadline; raises TimeoutError when nothing is."""
    remaining = deadline - time.monotonic()
    if remaining <= 0 or sock is None:
        raise TimeoutError
    sock.settimeout(remaining)


class _DeadlineIO(io.RawIOBase):
    """The socket as http.client reads an answer, every read bounded by what is left of the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        # A SocketIO holds the socket open after http.client "closes" it on a Connection: close answer.
        self._raw = sock.makefile("rb", buffering=0)
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        _remaining(self._sock, self._deadline)
        return self._raw.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _DeadlineSocket:
    """What http.client's response is given instead of the socket: only ``makefile`` is used."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineIO(self._sock, self._deadline))


def _describe(error: BaseException) -> str:
    if isinstance(error, http.client.IncompleteRead):
        return "the answer ended early"
    if isinstance(error, http.client.HTTPException):
        return f"bad HTTP answer ({type(error).__name__})"
    name = type(error).__name__
    return f"{name} ({error.strerror})" if isinstance(error, OSError) and error.strerror else name
