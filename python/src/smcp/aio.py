"""The asyncio client: the same methods as :class:`smcp.Client`, as coroutines.

Standard library only: by default each HTTP exchange runs in a worker thread
(``asyncio.to_thread``) with the same bounded read and hard deadline as the
blocking client, so a cancelled coroutine leaves at most one exchange
finishing in the background, never longer than its timeout. Sleeps between
polls are ``asyncio.sleep``, so cancelling a wait is immediate; it cancels the
job on the server, as a timeout does.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, TypeVar, cast

from .client import Client
from .config import resolve
from .errors import SmcpUsageError
from .keys import KeyInput
from .messages import Envelope, Response, result_of
from .steps import Drive, ProgressCallback, Request, Sleep, Steps, checked_args, deadline_after, job_id_of, reporter, tool_list
from .transport import AsyncTransport, ThreadedTransport, Transport

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient:
    """Like :class:`smcp.Client` (same arguments, same verification), with coroutine methods.

    ``on_progress`` may be a plain function or a coroutine function.
    ``transport`` may be an :class:`~smcp.transport.AsyncTransport` (its
    ``send`` a coroutine function) or a blocking
    :class:`~smcp.transport.Transport`, run in a worker thread.
    """

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        client_secret: KeyInput,
        server_key: Any,
        transport: Transport | AsyncTransport | None = None,
        **options: Any,
    ) -> None:
        if transport is not None and options.get("headers") is not None:
            raise SmcpUsageError("headers are sent by the default HTTP transport: give them to your transport instead")
        blocking = None if transport is None or _is_async(transport) else cast(Transport, transport)
        # The blocking client signs, verifies and holds the waiting policy; it sends only through `blocking`.
        self._client = Client(
            url, client_id=client_id, client_secret=client_secret, server_key=server_key, transport=blocking, **options
        )
        self._transport: AsyncTransport = (
            cast(AsyncTransport, transport) if transport is not None and blocking is None
            else ThreadedTransport(self._client.transport)
        )

    def __repr__(self) -> str:
        return f"AsyncClient({self.url!r}, client_id={self.client_id!r}, server_id={self.server_id!r})"

    @classmethod
    def from_env(cls, *, config: str | None = None, env: dict[str, str] | None = None, **overrides: Any) -> AsyncClient:
        """Configured like ``smcp call`` (see :meth:`smcp.Client.from_env`)."""
        return cls(**resolve(config=config, env=env, overrides=overrides))

    @property
    def client_id(self) -> str:
        """Whose key signs the requests."""
        return self._client.client_id

    @property
    def server_id(self) -> str:
        """The server whose answers are accepted."""
        return self._client.server_id

    @property
    def url(self) -> str:
        """The endpoint requests go to (with a custom transport: the server's name in messages)."""
        return self._client.url

    @property
    def transport(self) -> AsyncTransport:
        """What carries this client's requests."""
        return self._transport

    def build_envelope(self, tool: str, args: dict[str, Any] | None = None) -> Envelope:
        """Builds and signs an envelope without sending it."""
        return self._client.build_envelope(tool, args)

    def verify_response(self, body: bytes, request_id: str) -> Response:
        """Verifies an answer's bytes however they came (SPEC §3)."""
        return self._client.verify_response(body, request_id)

    async def send(self, body: bytes, request_id: str, *, timeout: float | None = None) -> Response:
        """Sends exact bytes and verifies the answer against ``request_id``."""
        answer = await self._transport.send(body, self._client.waiter.http_timeout if timeout is None else timeout)
        return self._client.verify_answer(answer, request_id)

    async def request(self, tool: str, args: dict[str, Any] | None = None, *, timeout: float | None = None) -> Response:
        """Signs and sends a call; returns the verified response, whatever its status."""
        envelope = self._client.build_envelope(tool, args)
        return await self.send(envelope.body, envelope.request_id, timeout=timeout)

    async def call(self, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Calls a tool; returns its verified result."""
        return result_of(await self.request(tool, args))

    async def start(self, tool: str, args: dict[str, Any] | None = None) -> str:
        """Starts a job tool; returns the job id."""
        return job_id_of(await self.request(tool, args), tool)

    async def poll(self, job_id: str) -> Response:
        """Polls a job once."""
        return await self.request("poll_job", {"job_id": job_id})

    async def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancels a job; returns ``{job_id, state, cancelled}``."""
        return await self.call("cancel_job", {"job_id": job_id})

    async def identity(self) -> dict[str, Any]:
        """``server_identity``."""
        return self._client.waiter.note_identity(await self.call("server_identity"))

    async def tools(self) -> list[dict[str, Any]]:
        """``list_tools``."""
        return tool_list(await self.call("list_tools"))

    async def wait(
        self,
        job_id: str,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
        *,
        cancel_on_timeout: bool = True,
    ) -> dict[str, Any]:
        """Waits for a job to end (see :meth:`smcp.Client.wait`); cancelling the coroutine cancels the job."""
        steps = self._client.waiter.wait(job_id, deadline_after(timeout), cancel_on_timeout)
        return result_of(await self._drive(steps, on_progress))

    async def call_and_wait(
        self,
        tool: str,
        args: dict[str, Any] | None = None,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
        *,
        cancel_on_timeout: bool = True,
    ) -> dict[str, Any]:
        """Calls a tool and waits for its job's result (see :meth:`smcp.Client.call_and_wait`)."""
        steps = self._client.waiter.call_and_wait(
            tool, checked_args(tool, args), deadline_after(timeout), cancel_on_timeout
        )
        return await self._drive(steps, on_progress)

    async def _drive(self, steps: Steps[T], on_progress: ProgressCallback | None) -> T:
        """Runs steps with coroutines; an exception (cancellation included) goes back into the steps."""
        report = reporter(on_progress)
        drive = Drive(steps)
        while (step := drive.next_step()) is not None:
            try:
                if isinstance(step, Request):
                    drive.value = await self.request(step.tool, step.args, timeout=step.timeout)
                elif isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                elif report is not None:
                    outcome = report(step)
                    if inspect.isawaitable(outcome):
                        await outcome
            except BaseException as caught:  # CancelledError too: the steps cancel the job, then re-raise it
                drive.error = caught
        return drive.result


def _is_async(transport: Transport | AsyncTransport) -> bool:
    """Whether the transport's ``send`` is a coroutine function (else it is run in a thread)."""
    return inspect.iscoroutinefunction(getattr(transport, "send", None))
