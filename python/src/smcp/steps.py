"""The waiting logic both clients share, written once and free of I/O.

Waiting for a job (polling, long-poll, rate limits, deadlines, cancelling on
timeout) is a generator of *steps*: :class:`Request` (send this call; the
generator is resumed with the verified :class:`~smcp.messages.Response`),
:class:`Sleep` (pause; resumed with ``None``) and :class:`Progress` (report it
to ``on_progress``). :class:`smcp.Client` runs the steps with blocking calls
and :class:`smcp.AsyncClient` with coroutines. An exception raised while a
step runs (a failed request, Ctrl-C, a cancelled task) is thrown back into the
generator, so "cancel the job on the server, then re-raise" is written once.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from . import canonical
from .errors import SmcpError, SmcpUsageError
from .messages import Response, result_of, server_error

T = TypeVar("T")

#: ``on_progress(progress, state, answer)``, as the TypeScript client's ``onProgress``: the job's progress
#: (an object, or None), its state ("queued" or "running") and the whole ``running`` result (e.g. its
#: ``note``). The older two-argument form ``on_progress(progress, state)`` is still accepted.
ProgressCallback = Callable[[Any, str, dict[str, Any]], Any] | Callable[[Any, str], Any]


@dataclass(frozen=True)
class Request:
    """Send ``tool(args)`` within ``timeout`` seconds; resume with the verified response."""

    tool: str
    args: dict[str, Any]
    timeout: float


@dataclass(frozen=True)
class Sleep:
    """Pause for ``seconds``; resume with None."""

    seconds: float


@dataclass(frozen=True)
class Progress:
    """A job's progress changed: report it to ``on_progress``."""

    progress: dict[str, Any] | None
    state: str
    answer: dict[str, Any]


Step = Request | Sleep | Progress
#: A generator of steps that ends with a value of type T.
Steps = Generator[Step, Any, T]


class Drive(Generic[T]):
    """Runs steps by hand: ``next_step()`` gives the next step (None once the steps ended, their value in
    :attr:`result`); set :attr:`value` to what the step gave, or :attr:`error` to what it raised, before asking
    for the next. The sync and async clients drive it the same way, each with its own I/O."""

    def __init__(self, steps: Steps[T]) -> None:
        self._steps = steps
        self.value: Any = None
        self.error: BaseException | None = None
        self._result: T | None = None

    def next_step(self) -> Step | None:
        try:
            step = self._steps.send(self.value) if self.error is None else self._steps.throw(self.error)
        except StopIteration as stop:
            self._result = stop.value
            return None
        self.value, self.error = None, None
        return step

    @property
    def result(self) -> T:
        """The steps' value, once ``next_step()`` returned None."""
        return cast(T, self._result)


class Expired(Exception):
    """The wait's deadline passed (turned into SmcpError ``timeout`` before it leaves the steps)."""


class Waiter:
    """The waiting policy of one client, and what it learnt (whether the server long-polls).

    ``http_timeout`` is the client's time for one exchange; a long poll adds
    its ``wait_ms`` to it, since the server may hold the answer that long.
    """

    def __init__(self, *, http_timeout: float, poll_interval: float, max_poll_interval: float, long_poll_ms: int) -> None:
        self.http_timeout = http_timeout
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max_poll_interval)
        self.long_poll_ms = long_poll_ms
        # Whether the server takes poll_job's wait_ms (SPEC §8); learnt once from server_identity.
        self.long_poll: bool | None = None if long_poll_ms > 0 else False

    def note_identity(self, result: dict[str, Any]) -> dict[str, Any]:
        """Learns ``capabilities.long_poll`` from a ``server_identity`` result; returns the result."""
        capabilities = result.get("capabilities")
        if self.long_poll_ms > 0:
            self.long_poll = isinstance(capabilities, dict) and capabilities.get("long_poll") is True
        return result

    def request(self, tool: str, args: dict[str, Any], deadline: float | None, wait_ms: int = 0) -> Steps[Response]:
        """One call, retried while the server answers ``rate_limited``; raises Expired at the deadline."""
        pause = self.poll_interval
        while True:
            # A long poll may take wait_ms before the server even starts answering.
            timeout = self.http_timeout + wait_ms / 1000
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Expired
                timeout = min(timeout, remaining)
            try:
                response: Response = yield Request(tool, args, timeout)
            except SmcpError as error:
                if deadline is not None and error.code == "unavailable" and time.monotonic() >= deadline:
                    raise Expired from None
                raise
            if response.status == "error" and (response.result or {}).get("code") == "rate_limited":
                retry_after = server_error(response).retry_after_ms
                yield Sleep(bounded(pause if retry_after is None else retry_after / 1000, deadline))
                pause = min(pause * 1.5, self.max_poll_interval)
                continue
            return response

    def capabilities(self, deadline: float | None) -> Steps[None]:
        """Asks ``server_identity`` once, unless already known, whether the server long-polls."""
        if self.long_poll is not None:
            return
        response = yield from self.request("server_identity", {}, deadline)
        try:
            self.note_identity(result_of(response))
        except SmcpError:
            # A verified refusal (e.g. a server without server_identity): poll the plain way.
            self.long_poll = False

    def poll_loop(self, job_id: str, deadline: float | None, version: int | None = None) -> Steps[Response]:
        """Polls until the job ends; returns its ``done`` or ``error`` response."""
        yield from self.capabilities(deadline)
        pause = self.poll_interval
        last: tuple[str, Any] | None = None
        # The job's version this client has seen (1 right after `accepted`); unknown: the first poll answers at once.
        # A server whose answers carry no version is long-polled without one.
        seen: int | None = version
        first = True
        while True:
            long_poll = bool(self.long_poll)
            args: dict[str, Any] = {"job_id": job_id}
            wait_ms = 0
            if long_poll and not (first and seen is None):
                wait_ms = self.long_poll_ms
                if deadline is not None:
                    wait_ms = min(wait_ms, int((deadline - time.monotonic()) * 1000))
                if wait_ms > 0:
                    args["wait_ms"] = wait_ms
                    if seen is not None:
                        args["version"] = seen  # answered at once if the job moved past it: no progress is missed
            elif not long_poll:
                yield Sleep(bounded(pause, deadline))
            asked = time.monotonic()
            polled = yield from self.request("poll_job", args, deadline, wait_ms)
            if polled.status == "error":
                if "wait_ms" in args and (polled.result or {}).get("code") == "bad_args":
                    self.long_poll = False  # advertised, yet refused (e.g. an older replica): plain polling from now on
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
                yield Progress(progress, state, result)
            elif long_poll and wait_ms > 0 and time.monotonic() - asked < wait_ms / 2000:
                # Nothing new, long before the wait was up (a server draining for a restart, or one that
                # claims long-poll and answers at once): pause, do not hammer it. "Long before" is half the
                # wait, as in the TypeScript client's waitForJob.
                yield Sleep(bounded(pause, deadline))
            pause = min(pause * 1.5, self.max_poll_interval)

    def cancel_quietly(self, job_id: str) -> Steps[None]:
        """Asks the server to cancel the job; any failure is swallowed."""
        try:
            yield Request("cancel_job", {"job_id": job_id}, min(self.http_timeout, 5.0))
        except Exception:  # best effort: the caller is told why it stopped, not why the cancel failed
            pass

    def wait(self, job_id: str, deadline: float | None, cancel_on_timeout: bool, version: int | None = None) -> Steps[Response]:
        """Waits for a job; at the deadline (or on Ctrl-C / task cancellation) cancels it unless told not to."""
        if not isinstance(job_id, str) or not job_id:
            raise SmcpUsageError("job_id must be a non-empty string (what start() returned)")
        try:
            return (yield from self.poll_loop(job_id, deadline, version))
        except Expired:
            if cancel_on_timeout:
                yield from self.cancel_quietly(job_id)
            raise SmcpError("timeout", f"stopped waiting for job {job_id}: the timeout passed") from None
        except (KeyboardInterrupt, asyncio.CancelledError):
            if cancel_on_timeout:
                yield from self.cancel_quietly(job_id)
            raise

    def call_and_wait(
        self, tool: str, args: dict[str, Any], deadline: float | None, cancel_on_timeout: bool
    ) -> Steps[dict[str, Any]]:
        """Calls a tool and, when it starts a job, waits for the job; returns the result."""
        try:
            started = yield from self.request(tool, args, deadline)
        except Expired:
            raise SmcpError("timeout", f"no answer from '{tool}' within the timeout") from None
        job_id = (started.result or {}).get("job_id")
        if started.status == "accepted" and isinstance(job_id, str) and job_id:
            final = yield from self.wait(job_id, deadline, cancel_on_timeout, version=1)  # just accepted
            return result_of(final)
        return result_of(started)  # a sync tool's answer, or the error that refused the call


def reporter(on_progress: ProgressCallback | None) -> Callable[[Progress], Any] | None:
    """Calls ``on_progress`` in the shape it takes: three arguments (as TypeScript), or the older two."""
    if on_progress is None:
        return None
    if _positional_arity(on_progress) >= 3:
        three: Callable[[Any, str, dict[str, Any]], Any] = on_progress  # type: ignore[assignment]
        return lambda step: three(step.progress, step.state, step.answer)
    two: Callable[[Any, str], Any] = on_progress  # type: ignore[assignment]
    return lambda step: two(step.progress, step.state)


def _positional_arity(function: Callable[..., Any]) -> int:
    """How many positional arguments ``function`` takes (a large number for ``*args``)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return 3  # no signature to read (some builtins): the documented shape
    count = 0
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return 1_000
        if parameter.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def bounded(seconds: float, deadline: float | None) -> float:
    """``seconds``, cut to what is left before ``deadline`` (never negative)."""
    if deadline is None:
        return max(0.0, seconds)
    return max(0.0, min(seconds, deadline - time.monotonic()))


def checked_args(tool: Any, args: Any) -> dict[str, Any]:
    """The call's args (``{}`` for None), refused with SmcpUsageError unless they are JSON the server accepts."""
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


def now_ms() -> int:
    """The wall clock in Unix milliseconds."""
    return time.time_ns() // 1_000_000


def deadline_after(timeout: float | None) -> float | None:
    """The monotonic time ``timeout`` seconds from now (None: no deadline)."""
    if timeout is None:
        return None
    if not isinstance(timeout, (int, float)) or timeout < 0:
        raise SmcpUsageError("timeout must be a number of seconds (>= 0) or None")
    return time.monotonic() + timeout


def job_id_of(response: Response, tool: str) -> str:
    """The job id of an ``accepted`` answer; SmcpUsageError if the tool answered at once."""
    result = result_of(response)
    job_id = result.get("job_id")
    if response.status != "accepted" or not isinstance(job_id, str) or not job_id:
        raise SmcpUsageError(f"'{tool}' is not a job tool: it answered at once (status {response.status}); use call()")
    return job_id


def tool_list(result: dict[str, Any]) -> list[dict[str, Any]]:
    """``list_tools``'s tools, checked to be a list of objects."""
    tools = result.get("tools")
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise SmcpError("bad_output", "list_tools did not answer with a list of tools")
    return tools
