"""AsyncClient: the same methods as coroutines, against the real server and the fake one."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import support
from support import Jobs, fake_client

import smcp
from smcp import AsyncClient, SmcpError


def async_client(server: support.RealServer) -> AsyncClient:
    return AsyncClient(
        server.url,
        client_id=support.CLIENT_ID,
        client_secret=support.CLIENT_SECRET,
        server_id=support.SERVER_ID,
        server_key=support.SERVER_SECRET,
    )


def test_every_method_against_the_real_server(server: support.RealServer) -> None:
    async def main() -> None:
        client = async_client(server)
        assert (await client.identity())["server_id"] == support.SERVER_ID
        assert await client.call("batch_sum", {"numbers": [1, 2]}) == {"count": 2, "total": 3}
        assert "batch_sum" in {tool["name"] for tool in await client.tools()}
        seen: list[Any] = []

        async def on_progress(progress: Any, state: str) -> None:  # a coroutine callback is awaited
            seen.append(progress)

        result = await client.call_and_wait("start_long_task", {"seconds": 2, "payload": {"a": 1}}, on_progress, timeout=20)
        assert result == {"a": 1} and seen
        job_id = await client.start("start_long_task", {"seconds": 1, "payload": {"b": 2}})
        assert (await client.poll(job_id)).status in ("running", "done")
        assert await client.wait(job_id, timeout=20) == {"b": 2}
        job_id = await client.start("start_long_task", {"seconds": 20})
        assert (await client.cancel(job_id))["cancelled"] is True
        with pytest.raises(SmcpError) as caught:
            await client.wait(job_id)
        assert (caught.value.code, caught.value.origin) == ("cancelled", "server")
        with pytest.raises(SmcpError) as caught:
            await client.call("batch_sum", {"numbers": []})
        assert (caught.value.code, caught.value.origin) == ("bad_args", "server")

    asyncio.run(main())


def test_calls_run_concurrently(server: support.RealServer) -> None:
    async def main() -> list[Any]:
        client = async_client(server)
        return await asyncio.gather(*(client.call("batch_sum", {"numbers": [n, 1]}) for n in range(20)))

    assert [r["total"] for r in asyncio.run(main())] == [n + 1 for n in range(20)]


def test_jobs_wait_side_by_side(server: support.RealServer) -> None:
    ended: list[float] = []

    async def one(client: AsyncClient, n: int) -> Any:
        result = await client.call_and_wait("start_long_task", {"seconds": 1, "payload": {"n": n}}, timeout=30)
        ended.append(time.monotonic())
        return result

    async def main() -> list[Any]:
        client = async_client(server)
        return await asyncio.gather(*(one(client, n) for n in range(4)))

    assert asyncio.run(main()) == [{"n": n} for n in range(4)]
    # Waited for together, they end together; one after another they would end a second or more apart.
    assert max(ended) - min(ended) < 2.0


def test_cancelling_the_coroutine_cancels_the_job(fake: Any) -> None:
    jobs = Jobs(script=[(30, "done")])
    server = fake(jobs)

    async def main() -> None:
        client = fake_client(server, AsyncClient)
        task = asyncio.create_task(client.call_and_wait("start_long_task", {}))
        while not any(s.message["tool"] == "poll_job" for s in server.seen):
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(main())
        assert server.tools_called()[-1] == "cancel_job"
        assert [job["state"] for job in jobs.jobs.values()] == ["cancelled"]
    finally:
        jobs.stop.set()


def test_a_timeout_cancels_the_job(fake: Any) -> None:
    jobs = Jobs(long_poll=True, script=[(30, "done")])
    server = fake(jobs)

    async def main() -> SmcpError:
        client = fake_client(server, AsyncClient)
        with pytest.raises(SmcpError) as caught:
            await client.call_and_wait("start_long_task", {}, timeout=0.8)
        return caught.value

    try:
        error = asyncio.run(main())
        assert (error.code, error.origin) == ("timeout", "local")
        assert server.tools_called()[-1] == "cancel_job"
    finally:
        jobs.stop.set()
        with jobs.changed:
            jobs.changed.notify_all()


def test_long_poll_and_the_capability_cache(fake: Any) -> None:
    jobs = Jobs(long_poll=True, script=[(0.5, "done")])
    server = fake(jobs)

    async def main() -> None:
        client = fake_client(server, AsyncClient)
        assert await client.call_and_wait("start_long_task", {"payload": {"x": 1}}) == {"x": 1}
        assert await client.call_and_wait("start_long_task", {"payload": {"x": 2}}) == {"x": 2}

    try:
        asyncio.run(main())
        polls = [s for s in server.seen if s.message["tool"] == "poll_job"]
        assert len(polls) == 2 and all(s.message["args"]["wait_ms"] == 20_000 for s in polls)
        assert server.tools_called().count("server_identity") == 1
    finally:
        jobs.stop.set()


def test_verification_is_the_same(fake: Any) -> None:
    server = fake(lambda req: support.response_for({"request_id": "someone-else"}))

    async def main() -> None:
        with pytest.raises(SmcpError) as caught:
            await fake_client(server, AsyncClient).call("x")
        assert (caught.value.code, caught.value.origin) == ("bad_envelope", "local")

    asyncio.run(main())


def test_the_event_loop_is_never_blocked(fake: Any) -> None:
    server = fake(lambda req: support.Reply(hang=True))

    async def main() -> int:
        client = fake_client(server, AsyncClient, timeout=0.6)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        with pytest.raises(SmcpError):
            await client.call("x")
        ticker.cancel()
        return ticks

    assert asyncio.run(main()) > 10


def test_from_env(server: support.RealServer) -> None:
    env = {
        "SMCP_URL": server.url,
        "SMCP_CLIENT_ID": support.CLIENT_ID,
        "SMCP_CLIENT_SECRET": support.CLIENT_SECRET,
        "SMCP_SERVER_ID": support.SERVER_ID,
        "SMCP_SERVER_SECRET": support.SERVER_SECRET,
        "SMCP_CONFIG": "/nonexistent/keyring.json",
    }
    client = AsyncClient.from_env(env=env)
    assert asyncio.run(client.call("batch_sum", {"numbers": [4]}))["total"] == 4
    assert isinstance(smcp.Client.from_env(env=env), smcp.Client)
