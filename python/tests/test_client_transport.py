"""Injected transports (Client(transport=...), AsyncClient(transport=...)), against the real server.

The transports here are real: one wraps the default HTTP transport and
records what passes through it, one speaks HTTP over asyncio streams with no
thread, and two tamper with real answers, which the client must refuse.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import support

import smcp
from smcp import AsyncClient, Client, SmcpError
from smcp.transport import Answer, HttpTransport, endpoint


@dataclass
class Exchange:
    body: bytes
    timeout: float
    answer: Answer
    seconds: float


@dataclass
class Recording:
    """A Transport: the default HTTP transport, with every exchange written down."""

    inner: HttpTransport
    exchanges: list[Exchange] = field(default_factory=list)

    def send(self, body: bytes, timeout: float) -> Answer:
        began = time.monotonic()
        answer = self.inner.send(body, timeout)
        self.exchanges.append(Exchange(body, timeout, answer, time.monotonic() - began))
        return answer

    def tools(self) -> list[str]:
        return [json.loads(e.body)["tool"] for e in self.exchanges]


class StreamTransport:
    """An AsyncTransport: HTTP/1.1 over asyncio streams (no worker thread), one connection per request."""

    def __init__(self, url: str) -> None:
        self.endpoint = endpoint(url)
        self.sent = 0

    async def send(self, body: bytes, timeout: float) -> Answer:
        return await asyncio.wait_for(self._exchange(body), timeout)

    async def _exchange(self, body: bytes) -> Answer:
        ep = self.endpoint
        reader, writer = await asyncio.open_connection(ep.host, ep.port)
        try:
            head = (
                f"POST {ep.path} HTTP/1.1\r\nHost: {ep.host}:{ep.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
            raw = await reader.read()  # Connection: close: the answer ends with the connection
        finally:
            writer.close()
            await writer.wait_closed()
        self.sent += 1
        headers, _, rest = raw.partition(b"\r\n\r\n")
        lines = headers.decode("latin1").split("\r\n")
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        assert "chunked" not in fields.get("transfer-encoding", ""), "smcp serve sends Content-Length"
        return Answer(int(lines[0].split()[1]), rest[: int(fields["content-length"])])


class Tampering:
    """A Transport that carries requests to the real server and changes what comes back."""

    def __init__(self, url: str, mode: str) -> None:
        self.inner = HttpTransport(url)
        self.mode = mode
        self.first: Answer | None = None

    def send(self, body: bytes, timeout: float) -> Answer:
        answer = self.inner.send(body, timeout)
        if self.mode == "replay":  # every request gets the first answer the server gave
            self.first = self.first or answer
            return self.first
        # "forge": the result altered after the server signed it
        assert b'"total":3' in answer.body, answer.body
        return Answer(answer.status, answer.body.replace(b'"total":3', b'"total":4'))


def options() -> dict[str, Any]:
    return {
        "client_id": support.CLIENT_ID,
        "client_secret": support.CLIENT_SECRET,
        "server_id": support.SERVER_ID,
        "server_key": support.SERVER_SECRET,
    }


def test_every_request_goes_through_the_given_transport(server: support.RealServer) -> None:
    recording = Recording(HttpTransport(server.url))
    client = Client(server.url, transport=recording, timeout=7.0, long_poll_ms=3_000, **options())
    assert client.transport is recording
    assert client.call("batch_sum", {"numbers": [1, 2]}) == {"count": 2, "total": 3}
    assert client.call_and_wait("start_long_task", {"seconds": 1, "payload": {"k": 1}}, timeout=20) == {"k": 1}
    tools = recording.tools()
    assert tools[:3] == ["batch_sum", "start_long_task", "server_identity"] and tools[-1] == "poll_job"
    # The bytes sent are the signed envelopes, exactly; the client's timeout is what the transport is given,
    # plus a long poll's wait_ms, since the server may hold that answer so long.
    for exchange in recording.exchanges:
        message = json.loads(exchange.body)
        assert message["client_id"] == support.CLIENT_ID and len(message["signature"]) == 64
        wait_ms = message["args"].get("wait_ms", 0) if message["tool"] == "poll_job" else 0
        assert exchange.timeout == pytest.approx(7.0 + wait_ms / 1000, abs=0.5)
        assert exchange.answer.status == 200
    assert any("wait_ms" in json.loads(e.body)["args"] for e in recording.exchanges if json.loads(e.body)["tool"] == "poll_job")


def test_a_forged_answer_from_the_transport_is_refused(server: support.RealServer) -> None:
    client = Client(server.url, transport=Tampering(server.url, "forge"), **options())
    with pytest.raises(SmcpError) as caught:
        client.call("batch_sum", {"numbers": [1, 2]})
    assert (caught.value.code, caught.value.origin) == ("bad_signature", "local")
    assert caught.value.received is not None and b'"total":4' in caught.value.received


def test_a_replayed_answer_from_the_transport_is_refused(server: support.RealServer) -> None:
    client = Client(server.url, transport=Tampering(server.url, "replay"), **options())
    assert client.call("batch_sum", {"numbers": [1, 2]})["total"] == 3
    with pytest.raises(SmcpError) as caught:  # genuinely signed, but it answers the first request
        client.call("batch_sum", {"numbers": [5]})
    assert (caught.value.code, caught.value.origin) == ("bad_envelope", "local")
    assert "another request" in str(caught.value)


def test_an_answer_over_the_size_cap_is_refused_whatever_carried_it(server: support.RealServer) -> None:
    client = Client(server.url, transport=Recording(HttpTransport(server.url)), max_response_bytes=100, **options())
    with pytest.raises(SmcpError) as caught:
        client.call("list_tools")
    assert (caught.value.code, caught.value.origin) == ("too_large", "local")


def test_headers_belong_to_the_transport() -> None:
    with pytest.raises(smcp.SmcpUsageError, match="transport"):
        Client("http://127.0.0.1:9/mcp", transport=HttpTransport("http://127.0.0.1:9/mcp"), headers={"X": "1"}, **options())


def test_the_async_client_takes_an_async_transport(server: support.RealServer) -> None:
    stream = StreamTransport(server.url)

    async def main() -> None:
        client = AsyncClient(server.url, transport=stream, long_poll_ms=3_000, **options())
        assert client.transport is stream
        assert await client.call("batch_sum", {"numbers": [2, 2]}) == {"count": 2, "total": 4}
        assert await client.call_and_wait("start_long_task", {"seconds": 1, "payload": {"a": 1}}, timeout=20) == {"a": 1}

    asyncio.run(main())
    assert stream.sent >= 4  # the call, the start, server_identity and at least one poll


def test_the_async_client_runs_a_blocking_transport_in_a_thread(server: support.RealServer) -> None:
    recording = Recording(HttpTransport(server.url))

    async def main() -> list[Any]:
        client = AsyncClient(server.url, transport=recording, **options())
        return await asyncio.gather(*(client.call("batch_sum", {"numbers": [n]}) for n in range(5)))

    assert [r["total"] for r in asyncio.run(main())] == list(range(5))
    assert recording.tools() == ["batch_sum"] * 5


def test_the_async_client_refuses_a_forged_answer(server: support.RealServer) -> None:
    async def main() -> None:
        client = AsyncClient(server.url, transport=Tampering(server.url, "forge"), **options())
        with pytest.raises(SmcpError) as caught:
            await client.call("batch_sum", {"numbers": [1, 2]})
        assert (caught.value.code, caught.value.origin) == ("bad_signature", "local")

    asyncio.run(main())
