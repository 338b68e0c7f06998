"""Against a real `smcp serve`: every tool, jobs, cancel, and every error it can be made to produce."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import support

import smcp
from smcp import SmcpError
from smcp.messages import result_of


def client_as(server: support.RealServer, **options: Any) -> smcp.Client:
    kwargs: dict[str, Any] = {
        "client_id": support.CLIENT_ID,
        "client_secret": support.CLIENT_SECRET,
        "server_id": support.SERVER_ID,
        "server_key": support.SERVER_SECRET,
        **options,
    }
    return smcp.Client(server.url, **kwargs)


def server_error(code: str, call: Any) -> SmcpError:
    with pytest.raises(SmcpError) as caught:
        call()
    error = caught.value
    assert (error.code, error.origin) == (code, "server"), error
    for secret in (support.CLIENT_SECRET, support.SERVER_SECRET, support.OTHER_SECRET):
        assert secret not in str(error) and secret not in json.dumps(error.details) and secret.encode() not in error.response.body
    return error


# ---------------------------------------------------------------- tools


def test_server_identity(client: smcp.Client) -> None:
    identity = client.identity()
    assert identity["server_id"] == support.SERVER_ID
    assert isinstance(identity["fingerprint"], str) and support.SERVER_SECRET not in identity["fingerprint"]
    assert identity["capabilities"]["async"] is True


def test_batch_sum(client: smcp.Client) -> None:
    assert client.call("batch_sum", {"numbers": [1, 2, 3.5]}) == {"count": 3, "total": 6.5}
    assert client.call("batch_sum", {"numbers": [0.1, 0.2]})["total"] == 0.30000000000000004


def test_list_tools(client: smcp.Client) -> None:
    tools = {tool["name"]: tool for tool in client.tools()}
    assert {"server_identity", "batch_sum", "start_long_task", "poll_job", "cancel_job", "list_tools"} <= set(tools)
    assert tools["start_long_task"]["kind"] == "job"
    assert tools["batch_sum"]["input_schema"]["type"] == "object"


def test_a_job_with_progress(client: smcp.Client) -> None:
    seen: list[tuple[Any, str]] = []
    result = client.call_and_wait(
        "start_long_task",
        {"seconds": 3, "payload": {"hello": "world", "n": [1, 2.5]}},
        on_progress=lambda progress, state: seen.append((progress, state)),
        timeout=20,
    )
    assert result == {"hello": "world", "n": [1, 2.5]}
    reports = [p for p, _ in seen if p is not None]
    assert reports, seen
    assert all(p["total"] == 3 and p["done"] in (1, 2) for p in reports)
    assert [p["done"] for p in reports] == sorted(p["done"] for p in reports)
    assert all(state in ("queued", "running") for _, state in seen)


def test_start_poll_and_wait(client: smcp.Client) -> None:
    job_id = client.start("start_long_task", {"seconds": 1, "payload": {"k": "v"}})
    first = client.poll(job_id)
    assert first.status in ("running", "done") and first.result["job_id" if first.status == "running" else "k"]
    assert client.wait(job_id, timeout=20) == {"k": "v"}
    done = client.poll(job_id)
    assert (done.status, done.result) == ("done", {"k": "v"})


def test_cancel(client: smcp.Client) -> None:
    job_id = client.start("start_long_task", {"seconds": 20})
    cancelled = client.cancel(job_id)
    assert cancelled == {"job_id": job_id, "state": "cancelled", "cancelled": True}
    error = server_error("cancelled", lambda: client.wait(job_id, timeout=20))
    assert error.response.result["job_id"] == job_id


def test_a_wait_that_times_out_cancels_the_job_on_the_server(client: smcp.Client) -> None:
    job_id = client.start("start_long_task", {"seconds": 20})
    began = time.monotonic()
    with pytest.raises(SmcpError) as caught:
        client.wait(job_id, timeout=0.8)
    assert (caught.value.code, caught.value.origin) == ("timeout", "local")
    assert time.monotonic() - began < 6
    after = client.poll(job_id)
    assert (after.status, after.result["code"]) == ("error", "cancelled")


def test_call_and_wait_on_a_sync_tool_returns_its_result(client: smcp.Client) -> None:
    assert client.call_and_wait("batch_sum", {"numbers": [2, 2]}) == {"count": 2, "total": 4}


def test_start_on_a_sync_tool_is_a_usage_error(client: smcp.Client) -> None:
    with pytest.raises(smcp.SmcpUsageError, match="not a job tool"):
        client.start("batch_sum", {"numbers": [1]})


# ---------------------------------------------------------------- errors the server produces


def test_bad_args(client: smcp.Client) -> None:
    error = server_error("bad_args", lambda: client.call("batch_sum", {"numbers": ["1", 2]}))
    assert error.details == {
        "issues": [{"code": "invalid_type", "path": ["numbers", 0], "message": "numbers[0]: expected number, got string"}],
        "more": 0,
    }
    assert str(error).endswith("(numbers[0]: expected number, got string)")
    server_error("bad_args", lambda: client.call("batch_sum", {"numbers": [1], "extra_key_x": 1}))
    server_error("bad_args", lambda: client.call("start_long_task", {"seconds": 0}))
    server_error("bad_args", lambda: client.call_and_wait("start_long_task", {"seconds": 99}))


def test_unknown_tool(client: smcp.Client) -> None:
    server_error("unknown_tool", lambda: client.call("no_such_tool_here"))


def test_unknown_job(client: smcp.Client, server: support.RealServer) -> None:
    server_error("unknown_job", lambda: client.wait("no-such-job", timeout=10))
    server_error("unknown_job", lambda: client.cancel("no-such-job"))
    # A job belongs to the client that started it.
    job_id = client.start("start_long_task", {"seconds": 1})
    other = client_as(server, client_id=support.OTHER_ID, client_secret=support.OTHER_SECRET)
    server_error("unknown_job", lambda: other.wait(job_id, timeout=10))


def test_bad_signature(server: support.RealServer) -> None:
    impostor = client_as(server, client_secret="not-the-right-secret-0123456789")
    server_error("bad_signature", lambda: impostor.call("batch_sum", {"numbers": [1]}))


def test_unknown_client(server: support.RealServer) -> None:
    stranger = client_as(server, client_id="nobody-we-know")
    server_error("unknown_client", lambda: stranger.call("server_identity"))


def test_wrong_server(client: smcp.Client) -> None:
    envelope = support.seed_envelope(support.CLIENT_SECRET, support.CLIENT_ID, "another-server", "server_identity", {})
    server_error("wrong_server", lambda: result_of(client.send(json.dumps(envelope).encode(), envelope["request_id"])))


def test_stale(client: smcp.Client) -> None:
    old = support.now_ms() - 301_000
    envelope = support.seed_envelope(
        support.CLIENT_SECRET, support.CLIENT_ID, support.SERVER_ID, "server_identity", {}, ts_ms=old
    )
    server_error("stale", lambda: result_of(client.send(json.dumps(envelope).encode(), envelope["request_id"])))


def test_replay(client: smcp.Client) -> None:
    envelope = client.build_envelope("batch_sum", {"numbers": [1]})
    assert client.send(envelope.body, envelope.request_id).ok
    server_error("replay", lambda: result_of(client.send(envelope.body, envelope.request_id)))


def test_bad_envelope(client: smcp.Client) -> None:
    envelope = client.build_envelope("batch_sum", {"numbers": [1]})
    broken = json.loads(envelope.body)
    del broken["nonce"]
    server_error("bad_envelope", lambda: result_of(client.send(json.dumps(broken).encode(), envelope.request_id)))
    server_error("bad_envelope", lambda: result_of(client.send(b"not json", "")))
    server_error("bad_envelope", lambda: result_of(client.send(b'{"request_id": "r", "request_id": "r"}', "")))


def test_too_large(client: smcp.Client) -> None:
    big = client.build_envelope("start_long_task", {"seconds": 1, "payload": {"x": "a" * 1_100_000}})
    # The server cannot read a request_id from a message it will not parse: its answer carries "".
    server_error("too_large", lambda: result_of(client.send(big.body, "")))
    # So call() cannot bind that answer to its request and refuses it, quoting what the server said.
    with pytest.raises(SmcpError) as caught:
        client.call("start_long_task", {"seconds": 1, "payload": {"x": "a" * 1_100_000}})
    assert (caught.value.code, caught.value.origin) == ("bad_envelope", "local")
    assert "too_large" in caught.value.message


def test_a_client_with_a_skewed_clock_refuses_the_answer_as_stale(server: support.RealServer) -> None:
    # Its own envelope is stale to the server too; the server's answer (signed) is then stale to it.
    skewed = client_as(server, now=lambda: support.now_ms() - 3_600_000)
    with pytest.raises(SmcpError) as caught:
        skewed.call("server_identity")
    assert (caught.value.code, caught.value.origin) == ("stale", "local")


def test_an_answer_from_a_server_with_another_key_is_refused(server: support.RealServer) -> None:
    wary = client_as(server, server_key="what-we-think-the-server-key-is")
    with pytest.raises(SmcpError) as caught:
        wary.call("server_identity")
    assert (caught.value.code, caught.value.origin) == ("bad_signature", "local")
    wrong_id = client_as(server, server_id="expected-another-id")
    with pytest.raises(SmcpError) as caught:
        wrong_id.call("server_identity")
    assert (caught.value.code, caught.value.origin) == ("wrong_server", "local")


def test_unavailable_when_nothing_listens() -> None:
    port = support.free_port()
    lonely = smcp.Client(
        f"http://127.0.0.1:{port}", client_id="a", client_secret=support.CLIENT_SECRET, server_key=support.SERVER_SECRET
    )
    with pytest.raises(SmcpError) as caught:
        lonely.call("server_identity")
    assert (caught.value.code, caught.value.origin) == ("unavailable", "local")
    assert f"127.0.0.1:{port}/mcp" in str(caught.value)


def test_bad_arguments_are_usage_errors_and_nothing_is_sent(client: smcp.Client) -> None:
    for args in ({1: 2}, {"x": float("nan")}, {"x": object()}, [1, 2], "numbers"):
        with pytest.raises(smcp.SmcpUsageError):
            client.call("batch_sum", args)  # type: ignore[arg-type]
    with pytest.raises(smcp.SmcpUsageError):
        client.wait("")
    with pytest.raises(smcp.SmcpUsageError):
        client.wait("x", timeout=-1)
