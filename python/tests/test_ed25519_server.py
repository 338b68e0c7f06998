"""Ed25519 (SPEC §7) against a real `smcp serve` holding an HMAC and an Ed25519 key, with clients of both kinds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import support

import smcp
from smcp import SmcpError
from smcp.messages import result_of

HMAC_ID, HMAC_SECRET = "hmac-agent", "hmac-agent-secret-0123456789abcdef"
ED_ID = "ed-agent"


@pytest.fixture(scope="module")
def keys() -> dict[str, dict[str, str]]:
    return {"server": support.keygen_ed25519(), "client": support.keygen_ed25519(), "other": support.keygen_ed25519()}


@pytest.fixture(scope="module")
def mixed(keys: dict[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.RealServer]:
    folder = tmp_path_factory.mktemp("ed25519")
    server = support.RealServer(
        [
            "--port", "0",
            "--store", "memory",
            "--config", str(folder / "keyring.json"),
            "--server-id", support.SERVER_ID,
            "--server-secret", support.SERVER_SECRET,  # first: signs answers to HMAC clients and to unknown ones
            "--server-secret", keys["server"]["secret"],
            "--client", f"{HMAC_ID}={HMAC_SECRET}",
            "--client", f"{ED_ID}={keys['client']['public']}",
        ]
    )  # fmt: skip
    yield server
    server.stop()


def ed_client(server: support.RealServer, keys: dict[str, dict[str, str]], **options: Any) -> smcp.Client:
    kwargs: dict[str, Any] = {
        "client_id": ED_ID,
        "client_secret": keys["client"]["secret"],
        "server_id": support.SERVER_ID,
        "server_key": keys["server"]["public"],
        **options,
    }
    return smcp.Client(server.url, **kwargs)


def test_an_ed25519_client_uses_every_tool(mixed: support.RealServer, keys: dict[str, dict[str, str]]) -> None:
    client = ed_client(mixed, keys)
    identity = client.identity()
    assert identity["capabilities"]["public_keys"] == [keys["server"]["public"]]
    assert set(identity["capabilities"]["signatures"]) == {"hmac-sha256", "ed25519"}
    response = client.request("batch_sum", {"numbers": [1, 2, 3.5]})
    assert response.result == {"count": 3, "total": 6.5} and len(response.signature) == 128
    assert "batch_sum" in {tool["name"] for tool in client.tools()}
    seen: list[Any] = []
    done = client.call_and_wait("start_long_task", {"seconds": 2, "payload": {"ed": True}}, lambda p, s: seen.append(p), 20)
    assert done == {"ed": True} and {"done": 1, "total": 2} in seen
    job_id = client.start("start_long_task", {"seconds": 20})
    assert client.cancel(job_id)["cancelled"] is True
    with pytest.raises(SmcpError) as caught:
        client.wait(job_id, timeout=20)
    assert (caught.value.code, caught.value.origin) == ("cancelled", "server")


def test_hmac_and_ed25519_clients_side_by_side(mixed: support.RealServer, keys: dict[str, dict[str, str]]) -> None:
    hmac_client = smcp.Client(
        mixed.url, client_id=HMAC_ID, client_secret=HMAC_SECRET, server_id=support.SERVER_ID, server_key=support.SERVER_SECRET
    )
    for _ in range(3):
        assert len(hmac_client.request("batch_sum", {"numbers": [1]}).signature) == 64
        assert len(ed_client(mixed, keys).request("batch_sum", {"numbers": [2]}).signature) == 128
    # And the seed's own HMAC envelopes, on the same server at the same time.
    envelope = support.seed_envelope(HMAC_SECRET, HMAC_ID, support.SERVER_ID, "batch_sum", {"numbers": [6.0]})
    assert hmac_client.send(json.dumps(envelope).encode(), envelope["request_id"]).result == {"count": 1, "total": 6}


def test_a_client_pinning_another_key_refuses_the_answers(mixed: support.RealServer, keys: dict[str, dict[str, str]]) -> None:
    wary = ed_client(mixed, keys, server_key=keys["other"]["public"])
    with pytest.raises(SmcpError) as caught:
        wary.call("server_identity")
    assert (caught.value.code, caught.value.origin) == ("bad_signature", "local")
    # Rotation: the right key anywhere in the pinned list verifies.
    rotated = ed_client(mixed, keys, server_key=[keys["other"]["public"], keys["server"]["public"]])
    assert rotated.call("server_identity")["server_id"] == support.SERVER_ID


def test_a_signature_by_another_private_key_is_refused_by_the_server(
    mixed: support.RealServer, keys: dict[str, dict[str, str]]
) -> None:
    impostor = ed_client(mixed, keys, client_secret=keys["other"]["secret"])
    with pytest.raises(SmcpError) as caught:
        impostor.call("batch_sum", {"numbers": [1]})
    # The server knows the client (Ed25519): it answers in Ed25519, which this client verifies.
    assert (caught.value.code, caught.value.origin) == ("bad_signature", "server")
    assert len(caught.value.response.signature) == 128


def test_an_hmac_signature_under_an_ed25519_client_is_refused(mixed: support.RealServer, keys: dict[str, dict[str, str]]) -> None:
    # An HMAC made with the client's public key as the secret, sent under the Ed25519 client's id.
    client = ed_client(mixed, keys)
    envelope = support.seed_envelope(keys["client"]["public"], ED_ID, support.SERVER_ID, "batch_sum", {"numbers": [1]})
    assert len(envelope["signature"]) == 64
    with pytest.raises(SmcpError) as caught:
        result_of(client.send(json.dumps(envelope).encode(), envelope["request_id"]))
    assert (caught.value.code, caught.value.origin) == ("bad_signature", "server")


def test_an_unknown_client_is_answered_with_the_servers_first_key(
    mixed: support.RealServer, keys: dict[str, dict[str, str]]
) -> None:
    # Before the client is known the server signs with its first key (HMAC here): an Ed25519 client accepts nothing else.
    stranger = ed_client(mixed, keys, client_id="nobody")
    with pytest.raises(SmcpError) as caught:
        stranger.call("server_identity")
    assert (caught.value.code, caught.value.origin) == ("bad_signature", "local")
    hmac_stranger = smcp.Client(
        mixed.url, client_id="nobody", client_secret=HMAC_SECRET, server_id=support.SERVER_ID, server_key=support.SERVER_SECRET
    )
    with pytest.raises(SmcpError) as caught:
        hmac_stranger.call("server_identity")
    assert (caught.value.code, caught.value.origin) == ("unknown_client", "server")


def test_from_env_where_smcp_serve_alg_ed25519_ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = support.RealServer(["--port", "0", "--store", "memory", "--alg", "ed25519"], cwd=str(tmp_path))
    try:
        keyring = json.loads((tmp_path / ".smcp" / "keyring.json").read_text())
        assert keyring["client_secrets"]["local"].startswith("ed25519-secret:")
        monkeypatch.chdir(tmp_path)
        client = smcp.Client.from_env(env={})  # keys, url and server id: all from the file
        assert client.url == served.url
        response = client.request("batch_sum", {"numbers": [1, 2]})
        assert response.result == {"count": 2, "total": 3} and len(response.signature) == 128
    finally:
        served.stop()
