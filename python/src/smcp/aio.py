"""The asyncio client: the same methods as :class:`smcp.Client`, as coroutines.

Standard library only: each HTTP exchange runs in a worker thread
(``asyncio.to_thread``) with the same bounded read and hard deadline as the
blocking client, so a cancelled coroutine leaves at most one exchange
finishing in the background, never longer than its timeout. Sleeps between
polls are ``asyncio.sleep``, so cancelling a wait is immediate; it cancels the
job on the server, as a timeout does.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, TypeVar

from .client import Client, ProgressCallback, Steps, _checked, _deadline, _job_id, _Request, _Sleep, _tool_list
from .config import resolve
from .keys import KeyInput
from .messages import Envelope, Response, result_of

T = TypeVar("T")


class AsyncClient:
    """Like :class:`smcp.Client` (same arguments, same verification), with coroutine methods.

    ``on_progress`` may be a plain function or a coroutine function.
    """

    def __init__(self, url: str, *, client_id: str, client_secret: KeyInput, server_key: Any, **options: Any) -> None:
        self._client = Client(url, client_id=client_id, client_secret=client_secret, server_key=server_key, **options)

    def __repr__(self) -> str:
        return f"AsyncClient({self.url!r}, client_id={self.client_id!r}, server_id={self.server_id!r})"

    @classmethod
    def from_env(cls, *, config: str | None = None, env: dict[str, str] | None = None, **overrides: Any) -> AsyncClient:
        """Configured like ``smcp call`` (see :meth:`smcp.Client.from_env`)."""
        return cls(**resolve(config=config, env=env, overrides=overrides))

    @property
    def client_id(self) -> str:
        return self._client.client_id

    @property
    def server_id(self) -> str:
        return self._client.server_id

    @property
    def url(self) -> str:
        return self._client.url

    def build_envelope(self, tool: str, args: dict[str, Any] | None = None) -> Envelope:
        """Builds and signs an envelope without sending it."""
        return self._client.build_envelope(tool, args)

    def verify_response(self, body: bytes, request_id: str) -> Response:
        """Verifies an answer's bytes however they came (SPEC §3)."""
        return self._client.verify_response(body, request_id)

    async def send(self, body: bytes, request_id: str, *, timeout: float | None = None) -> Response:
        """Sends exact bytes and verifies the answer against ``request_id``."""
        return await asyncio.to_thread(self._client.send, body, request_id, timeout=timeout)

    async def request(self, tool: str, args: dict[str, Any] | None = None, *, timeout: float | None = None) -> Response:
        """Signs and sends a call; returns the verified response, whatever its status."""
        envelope = self._client.build_envelope(tool, args)
        return await self.send(envelope.body, envelope.request_id, timeout=timeout)

    async def call(self, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Calls a tool; returns its verified result."""
        return result_of(await self.request(tool, args))

    async def start(self, tool: str, args: dict[str, Any] | None = None) -> str:
        """Starts a job tool; returns the job id."""
        return _job_id(await self.request(tool, args), tool)

    async def poll(self, job_id: str) -> Response:
        """Polls a job once."""
        return await self.request("poll_job", {"job_id": job_id})

    async def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancels a job; returns ``{job_id, state, cancelled}``."""
        return await self.call("cancel_job", {"job_id": job_id})

    async def identity(self) -> dict[str, Any]:
        """``server_identity``."""
        return self._client._note_identity(await self.call("server_identity"))

    async def tools(self) -> list[dict[str, Any]]:
        """``list_tools``."""
        return _tool_list(await self.call("list_tools"))

    async def wait(
        self,
        job_id: str,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
        *,
        cancel_on_timeout: bool = True,
    ) -> dict[str, Any]:
        """Waits for a job to end (see :meth:`smcp.Client.wait`); cancelling the coroutine cancels the job."""
        steps = self._client._steps_wait(job_id, _deadline(timeout), cancel_on_timeout)
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
        steps = self._client._steps_call_and_wait(tool, _checked(tool, args), _deadline(timeout), cancel_on_timeout)
        return await self._drive(steps, on_progress)

    async def _drive(self, steps: Steps[T], on_progress: ProgressCallback | None) -> T:
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
                    value = await self.request(step.tool, step.args, timeout=step.timeout)
                elif isinstance(step, _Sleep):
                    await asyncio.sleep(step.seconds)
                elif on_progress is not None:
                    outcome = on_progress(step.progress, step.state)
                    if inspect.isawaitable(outcome):
                        await outcome
            except BaseException as caught:  # CancelledError too: the steps cancel the job, then re-raise it
                error = caught
