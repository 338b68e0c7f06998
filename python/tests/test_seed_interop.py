"""Interop with the seed tutorial's own classes (test/interop/seed.py): MCPServer, MCPEnvelope, _hmac_hex."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import peer
import pytest
import support
from support import CLIENT_ID, CLIENT_SECRET, SERVER_ID, SERVER_SECRET, seed

import smcp
from smcp import SmcpError


def seed_client(url: str = "http://127.0.0.1:9/mcp", **options: Any) -> smcp.Client:
    kwargs: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "server_id": SERVER_ID,
        "server_key": SERVER_SECRET,
        "timeout": 10.0,
        **options,
    }
    return smcp.Client(url, **kwargs)


def test_the_seeds_server_answers_our_envelopes_and_we_verify_its_answers() -> None:
    client = seed_client()
    server = seed.MCPServer(SERVER_ID, SERVER_SECRET.encode())

    async def handle(envelope: smcp.Envelope) -> bytes:
        # The seed verifies the signature itself (else it answers an unsigned "bad signature").
        answer = await server.handle(json.loads(envelope.body), CLIENT_SECRET.encode())
        return json.dumps(answer).encode()

    identity = client.build_envelope("server_identity")
    total = client.build_envelope("batch_sum", {"numbers": [1, 2, 3]})
    identity_body = asyncio.run(handle(identity))
    total_body = asyncio.run(handle(total))
    assert b'"total": 6.0' in total_body
    assert client.verify_response(identity_body, identity.request_id).result["server_id"] == SERVER_ID
    verified = client.verify_response(total_body, total.request_id)
    assert verified.result == {"count": 3, "total": 6.0} and isinstance(verified.result["total"], float)


def test_our_envelopes_verify_in_the_seeds_code_and_fit_its_model() -> None:
    client = seed_client()
    for tool, args in [
        ("batch_sum", {"numbers": [1.5, 2, 1e21, 1e-7, -0.0]}),
        ("start_long_task", {"seconds": 2, "payload": {"😀": "\x00", "\uffff": [2**70], "f": 6.0}}),
        ("server_identity", {}),
    ]:
        envelope = client.build_envelope(tool, args)
        assert peer.verify(CLIENT_SECRET.encode(), envelope.body)
        seed.MCPEnvelope(**json.loads(envelope.body))  # the seed's strict model accepts every field
        tampered = envelope.body.replace(b'"tool":"', b'"tool":"x')
        assert not peer.verify(CLIENT_SECRET.encode(), tampered)


def test_seed_signed_envelopes_work_through_our_client_on_the_real_server(client: smcp.Client) -> None:
    for tool, args in [("server_identity", {}), ("batch_sum", {"numbers": [10, 20, 30.5]}), ("list_tools", {})]:
        envelope = support.seed_envelope(CLIENT_SECRET, CLIENT_ID, SERVER_ID, tool, args)
        response = client.send(json.dumps(envelope).encode(), envelope["request_id"])
        assert response.ok, response
        # ...and the server's answer verifies in the seed's code as well.
        assert peer.verify(SERVER_SECRET.encode(), response.body)
        seed.MCPResponse(**json.loads(response.body))


@pytest.fixture(scope="module")
def seed_http() -> Iterator[str]:
    """The seed's MCPServer behind peer.py's small HTTP shell, in its own process."""
    config = json.dumps({"server_id": SERVER_ID, "server_secret": SERVER_SECRET, "client_secret": CLIENT_SECRET})
    proc = subprocess.Popen(
        [sys.executable, os.path.join(support.INTEROP, "peer.py"), "serve", config],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    port = json.loads(proc.stdout.readline())["port"]
    yield f"http://127.0.0.1:{port}/mcp"
    proc.stdin.close()  # peer.py stops when its stdin closes
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def test_our_client_calls_the_seeds_server_over_http(seed_http: str) -> None:
    client = seed_client(seed_http)
    assert client.identity()["capabilities"] == {"async": True, "stateless": True}
    result = client.call("batch_sum", {"numbers": [1, 2, 3]})
    assert result == {"count": 3, "total": 6.0} and isinstance(result["total"], float)
    # A job: the seed advertises no long-poll, so this polls with backoff, every answer verified.
    seen: list[Any] = []
    done = client.call_and_wait(
        "start_long_task", {"seconds": 1, "payload": {"from": "python", "f": 6.0}}, lambda p, s: seen.append((p, s)), 20
    )
    assert done == {"from": "python", "f": 6.0} and isinstance(done["f"], float)
    assert seen and all(entry == (None, "running") for entry in seen)  # the seed reports no progress


def test_the_seeds_failures_are_never_results(seed_http: str) -> None:
    # The seed crashes on an unknown job (HTTP 500, not a message) and answers a bad signature unsigned.
    with pytest.raises(SmcpError) as caught:
        seed_client(seed_http).poll("no-such-job")
    assert (caught.value.code, caught.value.origin) == ("bad_envelope", "local")
    impostor = seed_client(seed_http, client_secret="not-the-client-secret-0123")
    with pytest.raises(SmcpError) as caught:
        impostor.call("batch_sum", {"numbers": [1]})
    assert (caught.value.code, caught.value.origin) == ("bad_envelope", "local")
    assert caught.value.received == b'{"error": "bad signature"}'
