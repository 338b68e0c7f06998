"""The synchronous client.

Waiting for a job is written once, as steps (:mod:`smcp.steps`); :class:`Client`
runs them with blocking calls and :class:`smcp.AsyncClient` with coroutines.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .config import resolve
from .errors import SmcpError, SmcpUsageError
from .keys import HMAC_ALG, KeyInput, signing_key, verify_keys
from .messages import Envelope, Response, build_envelope, result_of, verify_response
from .steps import (
    Drive,
    ProgressCallback,
    Request,
    Sleep,
    Steps,
    Waiter,
    checked_args,
    deadline_after,
    job_id_of,
    now_ms,
    reporter,
    tool_list,
)
from .transport import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, Answer, HttpTransport, Transport

__all__ = ["Client", "ProgressCallback"]

T = TypeVar("T")


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
    ``long_poll_ms`` (``wait_ms`` of a long poll, default 20000 as in the
    TypeScript client; 0: never),
    ``headers`` (extra HTTP headers, e.g. for a proxy), ``transport`` (what
    carries the bytes, a :class:`smcp.transport.Transport`; default HTTP to
    ``url``), ``now`` (a clock in Unix ms, for tests).
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
        long_poll_ms: int = 20_000,
        headers: dict[str, str] | None = None,
        transport: Transport | None = None,
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
        if transport is not None and headers is not None:
            raise SmcpUsageError("headers are sent by the default HTTP transport: give them to your transport instead")
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
        # Built even when a transport is given: it checks url, timeout and max_response_bytes, and names the server.
        http = HttpTransport(url, timeout=timeout, max_response_bytes=max_response_bytes, headers=headers)
        self._http = http
        self._transport: Transport = http if transport is None else transport
        self._freshness_ms = freshness_ms
        self._now = now if now is not None else now_ms
        self._waiter = Waiter(
            http_timeout=http.timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            long_poll_ms=long_poll_ms,
        )

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
        """The endpoint requests go to (with a custom transport: the server's name in messages)."""
        return self._http.endpoint.url

    @property
    def transport(self) -> Transport:
        """What carries this client's requests."""
        return self._transport

    @property
    def waiter(self) -> Waiter:
        """The waiting policy and the learnt long-poll capability (shared with :class:`smcp.AsyncClient`)."""
        return self._waiter

    # ------------------------------------------------------------------ one request

    def build_envelope(self, tool: str, args: dict[str, Any] | None = None) -> Envelope:
        """Builds and signs an envelope without sending it."""
        args = checked_args(tool, args)
        return build_envelope(
            key=self._key, client_id=self.client_id, server_id=self.server_id, tool=tool, args=args, ts_ms=self._now()
        )

    def send(self, body: bytes, request_id: str, *, timeout: float | None = None) -> Response:
        """Sends exact bytes and verifies the answer against ``request_id`` (whatever its status)."""
        answer = self._transport.send(body, self._waiter.http_timeout if timeout is None else timeout)
        return self.verify_answer(answer, request_id)

    def verify_answer(self, answer: Answer, request_id: str) -> Response:
        """Verifies what a transport brought back (size cap included); explains an unsigned 404."""
        if len(answer.body) > self._http.max_response_bytes:
            # The HTTP transport stops reading at the cap; another transport's answer is held to it here.
            raise SmcpError("too_large", f"the answer exceeds {self._http.max_response_bytes} bytes")
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
        return job_id_of(self.request(tool, args), tool)

    def poll(self, job_id: str) -> Response:
        """Polls a job once; the verified response (``running``, ``done`` or ``error``)."""
        return self.request("poll_job", {"job_id": job_id})

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancels a job; returns ``{job_id, state, cancelled}``."""
        return self.call("cancel_job", {"job_id": job_id})

    def identity(self) -> dict[str, Any]:
        """``server_identity``: ``{server_id, fingerprint, capabilities}``."""
        return self._waiter.note_identity(self.call("server_identity"))

    def tools(self) -> list[dict[str, Any]]:
        """``list_tools``: each tool with its name, kind and JSON Schemas."""
        return tool_list(self.call("list_tools"))

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
        ``on_progress(progress, state, answer)`` is called when the progress
        changes, with the whole ``running`` result as ``answer`` (as the
        TypeScript client's ``onProgress``); a two-argument callback is
        called with ``(progress, state)``.
        """
        steps = self._waiter.wait(job_id, deadline_after(timeout), cancel_on_timeout)
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
        steps = self._waiter.call_and_wait(tool, checked_args(tool, args), deadline_after(timeout), cancel_on_timeout)
        return self._drive(steps, on_progress)

    def _drive(self, steps: Steps[T], on_progress: ProgressCallback | None) -> T:
        """Runs steps with blocking calls; an exception (Ctrl-C included) goes back into the steps."""
        report = reporter(on_progress)
        drive = Drive(steps)
        while (step := drive.next_step()) is not None:
            try:
                if isinstance(step, Request):
                    drive.value = self.request(step.tool, step.args, timeout=step.timeout)
                elif isinstance(step, Sleep):
                    time.sleep(step.seconds)
                elif report is not None:
                    outcome = report(step)
                    if inspect.iscoroutine(outcome):
                        outcome.close()
                        raise SmcpUsageError("on_progress is a coroutine function; await AsyncClient's methods to use one")
            except BaseException as caught:
                drive.error = caught
        return drive.result
