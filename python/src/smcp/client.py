"""The synchronous client, and the waiting logic both clients share.

Waiting for a job (polling, long-poll, rate limits, deadlines, cancelling on
timeout) is written once, as a generator of steps (send a request, sleep,
report progress); :class:`Client` runs the steps with blocking calls and
:class:`smcp.AsyncClient` with coroutines.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from . import canonical
from .config import resolve
from .errors import SmcpError, SmcpUsageError
from .keys import HMAC_ALG, KeyInput, signing_key, verify_keys
from .messages import Envelope, Response, build_envelope, result_of, server_error, verify_response
from .transport import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, HttpTransport

#: Called with a job's progress (an object, or None) and its state ("queued" or "running").
ProgressCallback = Callable[[Any, str], Any]

T = TypeVar("T")


@dataclass(frozen=True)
class _Request:
    tool: str
    args: dict[str, Any]
    timeout: float


@dataclass(frozen=True)
class _Sleep:
    seconds: float


@dataclass(frozen=True)
class _Progress:
    progress: dict[str, Any] | None
    state: str


_Step = _Request | _Sleep | _Progress
Steps = Generator[_Step, Any, T]


class _Expired(Exception):
    """The wait's deadline passed (internal: becomes SmcpError ``timeout``)."""


class Client:
    """Calls an smcp server over HTTP; every answer is verified before it is used.

    An answer counts only if it is well formed, signed by the server's key
    (``server_key``: the server's HMAC secret, or its pinned ``ed25519:`` public
    key), answers this request's ``request_id``, comes from ``server_id`` and
    is fresh. A verified error answer raises :class:`SmcpError` with origin
    ``"server"``; an answer that fails verification raises it with origin
    ``"local"``.

    Options: ``timeout`` (seconds per HTTP exchange, default 30),
    ``freshness_ms`` (accepted distance of an answer's ``ts_ms``, default
    300000), ``max_response_bytes`` (default 8 MiB), ``poll_interval`` and
    ``max_poll_interval`` (seconds between plain polls, 0.2 growing to 2.0),
    ``long_poll_ms`` (``wait_ms`` of a long poll, default 25000; 0: never),
    ``headers`` (extra HTTP headers, e.g. for a proxy), ``now`` (a clock in
    Unix ms, for tests).
    """

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        client_secret: KeyInput,
        server_key: KeyInput | list[KeyInput],
        server_id: str = "smcp-local",
        timeout: float = DEFAULT_TIMEOUT,
        freshness_ms: int = 300_000,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        poll_interval: float = 0.2,
        max_poll_interval: float = 2.0,
        long_poll_ms: int = 25_000,
        headers: dict[str, str] | None = None,
        now: Callable[[], int] | None = None,
    ) -> None:
        if not isinstance(client_id, str) or not client_id:
            raise SmcpUsageError("client_id must be a non-empty string (for example client_id='my-agent')")
        if not isinstance(server_id, str) or not server_id:
            raise SmcpUsageError("server_id must be a non-empty string (for example server_id='smcp-local')")
        if not (type(freshness_ms) is int and freshness_ms > 0):
            raise SmcpUsageError("freshness_ms must be a positive integer (default 300000)")
        if not (type(long_poll_ms) is int and 0 <= long_poll_ms <= 30_000):
            raise SmcpUsageError("long_poll_ms must be an integer from 0 (off) to 30000 (SPEC §8)")
        if not (0 < poll_interval <= max_poll_interval):
            raise SmcpUsageError("poll_interval must be positive and at most max_poll_interval")
        self.client_id = client_id
        self.server_id = server_id
        self._key = signing_key(client_secret, f"client_secret of '{client_id}'")
        self._server_keys = verify_keys(server_key, "server_key")
        if self._key.alg != self._server_keys[0].alg:
            mine = "HMAC" if self._key.alg == HMAC_ALG else "Ed25519"
            theirs = "HMAC secret" if self._server_keys[0].alg == HMAC_ALG else "Ed25519 public key"
            raise SmcpUsageError(
                f"client '{client_id}' signs with {mine} but server_key is an {theirs}: a server answers each client "
                "in the algorithm of its key (SPEC §7), so no answer could verify; give a matching pair"
            )
        self._transport = HttpTransport(url, timeout=timeout, max_response_bytes=max_response_bytes, headers=headers)
        self._freshness_ms = freshness_ms
        self._poll_interval = float(poll_interval)
        self._max_poll_interval = float(max_poll_interval)
        self._long_poll_ms = long_poll_ms
        self._now = now if now is not None else _now_ms
        # Whether the server takes poll_job's wait_ms (SPEC §8); learnt once from server_identity.
        self._long_poll: bool | None = None if long_poll_ms > 0 else False

    def __repr__(self) -> str:  # no secrets
        return f"{type(self).__name__}({self.url!r}, client_id={self.client_id!r}, server_id={self.server_id!r})"

    @classmethod
    def from_env(cls, *, config: str | None = None, env: dict[str, str] | None = None, **overrides: Any) -> Client:
        """A client configured like ``smcp call``: arguments, then ``SMCP_*`` variables, then the keyring file.

        Works in the folder where ``smcp serve`` ran (``.smcp/keyring.json``).
        ``overrides`` are this class's own arguments (``url``, ``client_id``, ...).
        """
        return cls(**resolve(config=config, env=env, overrides=overrides))

    @property
    def url(self) -> str:
        """The endpoint requests go to."""
        return self._transport.endpoint.url

    # ------------------------------------------------------------------ one request

    def build_envelope(self, tool: str, args: dict[str, Any] | None = None) -> Envelope:
        """Builds and signs an envelope without sending it."""
        args = _checked(tool, args)
        return build_envelope(
            key=self._key, client_id=self.client_id, server_id=self.server_id, tool=tool, args=args, ts_ms=self._now()
        )

    def send(self, body: bytes, request_id: str, *, timeout: float | None = None) -> Response:
        """Sends exact bytes and verifies the answer against ``request_id`` (whatever its status)."""
        answer = self._transport.post(body, timeout)
        try:
            return self.verify_response(answer.body, request_id, http_status=answer.status)
        except SmcpError as error:
            # An unsigned 404 is a wrong URL, not a forgery: say so (as the TypeScript client does).
            if answer.status == 404 and error.code == "bad_envelope":
                raise SmcpError(
                    "bad_envelope",
                    "no smcp endpoint at this URL (HTTP 404); `smcp serve` listens on /mcp",
                    received=error.received,
                ) from None
            raise

    def verify_response(self, body: bytes, request_id: str, *, http_status: int | None = None) -> Response:
        """Verifies an answer's bytes however they came (SPEC §3); raises SmcpError (origin local) if they fail."""
        return verify_response(
            body,
            request_id=request_id,
            server_id=self.server_id,
            keys=self._server_keys,
            now_ms=self._now(),
            freshness_ms=self._freshness_ms,
            http_status=http_status,
        )

    def request(self, tool: str, args: dict[str, Any] | None = None, *, timeout: float | None = None) -> Response:
        """Signs and sends a call; returns the verified response, whatever its status."""
        envelope = self.build_envelope(tool, args)
        return self.send(envelope.body, envelope.request_id, timeout=timeout)

    # ------------------------------------------------------------------ the API

    def call(self, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Calls a tool; returns its verified result (a job tool gives ``{"job_id": ...}``)."""
        return result_of(self.request(tool, args))

    def start(self, tool: str, args: dict[str, Any] | None = None) -> str:
        """Starts a job tool; returns the job id."""
        return _job_id(self.request(tool, args), tool)

    def poll(self, job_id: str) -> Response:
        """Polls a job once; the verified response (``running``, ``done`` or ``error``)."""
        return self.request("poll_job", {"job_id": job_id})

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancels a job; returns ``{job_id, state, cancelled}``."""
        return self.call("cancel_job", {"job_id": job_id})

    def identity(self) -> dict[str, Any]:
        """``server_identity``: ``{server_id, fingerprint, capabilities}``."""
        return self._note_identity(self.call("server_identity"))

    def tools(self) -> list[dict[str, Any]]:
        """``list_tools``: each tool with its name, kind and JSON Schemas."""
        return _tool_list(self.call("list_tools"))

    def wait(
        self,
        job_id: str,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
        *,
        cancel_on_timeout: bool = True,
    ) -> dict[str, Any]:
        """Waits for a job to end; returns its result, or raises SmcpError with the job's code.

        Long-polls when the server advertises it (SPEC §8), else polls with
        backoff; ``rate_limited`` answers are retried after ``retry_after_ms``.
        After ``timeout`` seconds (or on Ctrl-C) the job is cancelled on the
        server and SmcpError ``timeout`` (origin local) is raised.
        ``on_progress(progress, state)`` is called when the progress changes.
        """
        steps = self._steps_wait(job_id, _deadline(timeout), cancel_on_timeout)
        return result_of(self._drive(steps, on_progress))

    def call_and_wait(
        self,
        tool: str,
        args: dict[str, Any] | None = None,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
        *,
        cancel_on_timeout: bool = True,
    ) -> dict[str, Any]:
        """Calls a tool and, when it starts a job, waits for the job's result (see :meth:`wait`).

        ``timeout`` covers the whole: the call and the wait.
        """
        steps = self._steps_call_and_wait(tool, _checked(tool, args), _deadline(timeout), cancel_on_timeout)
        return self._drive(steps, on_progress)

    # ------------------------------------------------------------------ shared waiting logic

    def _note_identity(self, result: dict[str, Any]) -> dict[str, Any]:
        capabilities = result.get("capabilities")
        if self._long_poll_ms > 0:
            self._long_poll = isinstance(capabilities, dict) and capabilities.get("long_poll") is True
        return result

    def _bounded(self, seconds: float, deadline: float | None) -> float:
        if deadline is None:
            return max(0.0, seconds)
        return max(0.0, min(seconds, deadline - time.monotonic()))

    def _steps_request(self, tool: str, args: dict[str, Any], deadline: float | None, wait_ms: int = 0) -> Steps[Response]:
        """One call, retried while the server answers ``rate_limited``; raises _Expired at the deadline."""
        pause = self._poll_interval
        while True:
            # A long poll may take wait_ms before the server even starts answering.
            timeout = self._transport.timeout + wait_ms / 1000
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Expired
                timeout = min(timeout, remaining)
            try:
                response = yield _Request(tool, args, timeout)
            except SmcpError as error:
                if deadline is not None and error.code == "unavailable" and time.monotonic() >= deadline:
                    raise _Expired from None
                raise
            if response.status == "error" and (response.result or {}).get("code") == "rate_limited":
                retry_after = server_error(response).retry_after_ms
                yield _Sleep(self._bounded(pause if retry_after is None else retry_after / 1000, deadline))
                pause = min(pause * 1.5, self._max_poll_interval)
                continue
            return response

    def _steps_capabilities(self, deadline: float | None) -> Steps[None]:
        if self._long_poll is not None:
            return
        response = yield from self._steps_request("server_identity", {}, deadline)
        try:
            self._note_identity(result_of(response))
        except SmcpError:
            # A verified refusal (e.g. a server without server_identity): poll the plain way.
            self._long_poll = False

    def _steps_poll_loop(self, job_id: str, deadline: float | None, version: int | None = None) -> Steps[Response]:
        yield from self._steps_capabilities(deadline)
        pause = self._poll_interval
        last: tuple[str, Any] | None = None
        # The job's version this client has seen (1 right after `accepted`); unknown: the first poll answers at once.
        # A server whose answers carry no version is long-polled without one.
        seen: int | None = version
        first = True
        while True:
            long_poll = bool(self._long_poll)
            args: dict[str, Any] = {"job_id": job_id}
            wait_ms = 0
            if long_poll and not (first and seen is None):
                wait_ms = self._long_poll_ms
                if deadline is not None:
                    wait_ms = min(wait_ms, int((deadline - time.monotonic()) * 1000))
                if wait_ms > 0:
                    args["wait_ms"] = wait_ms
                    if seen is not None:
                        args["version"] = seen  # answered at once if the job moved past it: no progress is missed
            elif not long_poll:
                yield _Sleep(self._bounded(pause, deadline))
            asked = time.monotonic()
            polled = yield from self._steps_request("poll_job", args, deadline, wait_ms)
            if polled.status == "error":
                if "wait_ms" in args and (polled.result or {}).get("code") == "bad_args":
                    self._long_poll = False  # advertised, yet refused (e.g. an older replica): plain polling from now on
                    continue
                return polled
            if polled.status == "done":
                return polled
            # Anything else means "not finished yet", as in the TypeScript client.
            result = polled.result or {}
            answered = result.get("version")
            seen = answered if type(answered) is int else None
            first = False
            state = "queued" if result.get("state") == "queued" else "running"
            progress = result.get("progress") if isinstance(result.get("progress"), dict) else None
            if last is None or (state, progress) != last:
                last = (state, progress)
                yield _Progress(progress, state)
            elif long_poll and wait_ms > 0 and time.monotonic() - asked < wait_ms / 10_000:
                # Claims long-poll, yet answered at once with nothing new: do not hammer it.
                yield _Sleep(self._bounded(pause, deadline))
            pause = min(pause * 1.5, self._max_poll_interval)

    def _steps_cancel_quietly(self, job_id: str) -> Steps[None]:
        try:
            yield _Request("cancel_job", {"job_id": job_id}, min(self._transport.timeout, 5.0))
        except Exception:  # best effort: the caller is told why it stopped, not why the cancel failed
            pass

    def _steps_wait(
        self, job_id: str, deadline: float | None, cancel_on_timeout: bool, version: int | None = None
    ) -> Steps[Response]:
        if not isinstance(job_id, str) or not job_id:
            raise SmcpUsageError("job_id must be a non-empty string (what start() returned)")
        try:
            return (yield from self._steps_poll_loop(job_id, deadline, version))
        except _Expired:
            if cancel_on_timeout:
                yield from self._steps_cancel_quietly(job_id)
            raise SmcpError("timeout", f"stopped waiting for job {job_id}: the timeout passed") from None
        except (KeyboardInterrupt, asyncio.CancelledError):
            if cancel_on_timeout:
                yield from self._steps_cancel_quietly(job_id)
            raise

    def _steps_call_and_wait(
        self, tool: str, args: dict[str, Any], deadline: float | None, cancel_on_timeout: bool
    ) -> Steps[dict[str, Any]]:
        try:
            started = yield from self._steps_request(tool, args, deadline)
        except _Expired:
            raise SmcpError("timeout", f"no answer from '{tool}' within the timeout") from None
        job_id = (started.result or {}).get("job_id")
        if started.status == "accepted" and isinstance(job_id, str) and job_id:
            final = yield from self._steps_wait(job_id, deadline, cancel_on_timeout, version=1)  # just accepted
            return result_of(final)
        return result_of(started)  # a sync tool's answer, or the error that refused the call

    def _drive(self, steps: Steps[T], on_progress: ProgressCallback | None) -> T:
        """Runs steps with blocking calls; an exception (Ctrl-C included) goes back into the steps."""
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = steps.send(value) if error is None else steps.throw(error)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            try:
                if isinstance(step, _Request):
                    value = self.request(step.tool, step.args, timeout=step.timeout)
                elif isinstance(step, _Sleep):
                    time.sleep(step.seconds)
                elif on_progress is not None:
                    outcome = on_progress(step.progress, step.state)
                    if inspect.iscoroutine(outcome):
                        outcome.close()
                        raise SmcpUsageError("on_progress is a coroutine function; await AsyncClient's methods to use one")
            except BaseException as caught:
                error = caught


def _checked(tool: Any, args: Any) -> dict[str, Any]:
    if not isinstance(tool, str):
        raise SmcpUsageError("tool must be a string, the tool's name")
    args = {} if args is None else args
    if not isinstance(args, dict):
        raise SmcpUsageError(f"args must be a dict (a JSON object), not {type(args).__name__}")
    try:
        canonical.check_outgoing(args)
    except (TypeError, ValueError) as error:
        raise SmcpUsageError(str(error)) from None
    return args


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _deadline(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if not isinstance(timeout, (int, float)) or timeout < 0:
        raise SmcpUsageError("timeout must be a number of seconds (>= 0) or None")
    return time.monotonic() + timeout


def _job_id(response: Response, tool: str) -> str:
    result = result_of(response)
    job_id = result.get("job_id")
    if response.status != "accepted" or not isinstance(job_id, str) or not job_id:
        raise SmcpUsageError(f"'{tool}' is not a job tool: it answered at once (status {response.status}); use call()")
    return job_id


def _tool_list(result: dict[str, Any]) -> list[dict[str, Any]]:
    tools = result.get("tools")
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise SmcpError("bad_output", "list_tools did not answer with a list of tools")
    return tools
