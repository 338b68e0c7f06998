"""Configuration like the CLI's: arguments, then SMCP_* variables, then the keyring file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import support

import smcp
from smcp.config import resolve
from smcp.errors import SmcpUsageError


def write_keyring(folder: Path, content: Any, mode: int = 0o600) -> str:
    path = folder / ".smcp" / "keyring.json"
    path.parent.mkdir(mode=0o700, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    path.chmod(mode)
    return str(path)


HMAC_FILE = {
    "server_id": "file-server",
    "server_secret": "file-server-secret-0123456789",
    "server_kid": "k-1",
    "clients": {"first": "first-client-secret-0123456789", "second": "second-client-secret-0123456789"},
    "url": "http://127.0.0.1:1234/mcp",
    "store": "sqlite:.smcp/smcp.db",
}


def test_the_file_alone(tmp_path: Path) -> None:
    path = write_keyring(tmp_path, HMAC_FILE)
    resolved = resolve(config=path, env={}, overrides={})
    assert resolved == {
        "url": "http://127.0.0.1:1234/mcp",
        "client_id": "first",
        "client_secret": "first-client-secret-0123456789",
        "server_key": "file-server-secret-0123456789",
        "server_id": "file-server",
    }


def test_environment_over_file_and_arguments_over_environment(tmp_path: Path) -> None:
    path = write_keyring(tmp_path, HMAC_FILE)
    env = {
        "SMCP_CLIENT_ID": "second",
        "SMCP_SERVER_ID": "env-server",
        "SMCP_URL": "http://env:1/mcp",
        "SMCP_SERVER_SECRET": "env-server-secret-0123456789",
    }
    resolved = resolve(config=path, env=env, overrides={})
    assert resolved["client_id"] == "second" and resolved["client_secret"] == "second-client-secret-0123456789"
    expected = ("env-server", "http://env:1/mcp", "env-server-secret-0123456789")
    assert (resolved["server_id"], resolved["url"], resolved["server_key"]) == expected
    # SMCP_SERVER_KEY wins over SMCP_SERVER_SECRET.
    with_key = {**env, "SMCP_SERVER_KEY": "env-key-0123456789abc"}
    assert resolve(config=path, env=with_key, overrides={})["server_key"] == "env-key-0123456789abc"
    overrides = {
        "client_id": "arg-client",
        "client_secret": "arg-secret-0123456789",
        "server_secret": "arg-server-0123456789",
        "timeout": 3.0,
    }
    resolved = resolve(config=path, env=env, overrides=overrides)
    expected = ("arg-client", "arg-secret-0123456789", "arg-server-0123456789")
    assert (resolved["client_id"], resolved["client_secret"], resolved["server_key"]) == expected
    assert resolved["timeout"] == 3.0 and "server_secret" not in resolved


def test_smcp_config_names_the_file(tmp_path: Path) -> None:
    path = write_keyring(tmp_path, HMAC_FILE)
    assert resolve(config=None, env={"SMCP_CONFIG": path}, overrides={})["client_id"] == "first"


def test_defaults(tmp_path: Path) -> None:
    env = {
        "SMCP_CLIENT_ID": "a",
        "SMCP_CLIENT_SECRET": "s" * 16,
        "SMCP_SERVER_SECRET": "t" * 16,
        "SMCP_CONFIG": str(tmp_path / "none.json"),
    }
    resolved = resolve(config=None, env=env, overrides={})
    assert (resolved["url"], resolved["server_id"]) == ("http://127.0.0.1:8787/mcp", "smcp-local")


def test_ed25519_keyring(tmp_path: Path) -> None:
    _, client_secret, client_public = support.ed25519_pair()
    _, server_secret, server_public = support.ed25519_pair()
    content = {
        "server_id": "ed-server",
        "server_secret": ["hmac-server-secret-0123456789", server_secret],
        "server_key": server_public,
        "clients": {"agent": {"keys": [client_public], "limits": {"rps": 5}}, "legacy": ["legacy-secret-0123456789"]},
        "client_secrets": {"agent": client_secret},
    }
    path = write_keyring(tmp_path, content)
    resolved = resolve(config=path, env={}, overrides={})
    assert (resolved["client_id"], resolved["client_secret"], resolved["server_key"]) == ("agent", client_secret, server_public)
    smcp.Client(**resolved)  # a consistent pair
    # An HMAC client in the same file verifies with the HMAC entries of server_secret, not the pinned key.
    resolved = resolve(config=path, env={}, overrides={"client_id": "legacy"})
    assert (resolved["client_secret"], resolved["server_key"]) == ("legacy-secret-0123456789", "hmac-server-secret-0123456789")
    smcp.Client(**resolved)


def test_several_pinned_keys_and_jwk(tmp_path: Path) -> None:
    _, client_secret, _ = support.ed25519_pair()
    _, _, public_a = support.ed25519_pair()
    _, _, public_b = support.ed25519_pair()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": public_b.split(":")[1]}
    keyring = {"server_key": [public_a, jwk], "clients": {"me": {"keys": []}}, "client_secrets": {"me": client_secret}}
    path = write_keyring(tmp_path, keyring)
    resolved = resolve(config=path, env={}, overrides={})
    assert resolved["server_key"] == [public_a, jwk]
    smcp.Client(**resolved)


@pytest.mark.parametrize(
    "env, needle",
    [
        ({}, "SMCP_CLIENT_ID"),
        ({"SMCP_CLIENT_ID": "a"}, "SMCP_CLIENT_SECRET"),
        ({"SMCP_CLIENT_ID": "a", "SMCP_CLIENT_SECRET": "s" * 16}, "SMCP_SERVER_KEY"),
    ],
)
def test_missing_settings_name_the_fix(tmp_path: Path, env: dict[str, str], needle: str) -> None:
    with pytest.raises(SmcpUsageError) as caught:
        smcp.Client.from_env(config=str(tmp_path / "none.json"), env=env)
    assert needle in str(caught.value) and "smcp serve" in str(caught.value)


def test_a_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = write_keyring(tmp_path, HMAC_FILE, mode=0o644)
    with pytest.raises(SmcpUsageError, match="chmod 600"):
        resolve(config=path, env={}, overrides={})


@pytest.mark.parametrize(
    "content",
    ["{not json", '{"clients": {"a": "x"}, "clients": {}}', "[]", '{"clients": []}', '{"server_id": 5}', '{"server_key": 5}'],
)
def test_a_broken_file_is_refused_without_quoting_secrets(tmp_path: Path, content: str) -> None:
    path = write_keyring(tmp_path, content)
    with pytest.raises(SmcpUsageError) as caught:
        resolve(config=path, env={"SMCP_CLIENT_ID": "a", "SMCP_CLIENT_SECRET": "s" * 16}, overrides={})
    assert "fix it or delete" in str(caught.value)


def test_from_env_where_smcp_serve_ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A first `smcp serve` with nothing configured writes .smcp/keyring.json here; from_env reads it.
    served = support.RealServer(["--port", "0", "--store", "memory"], cwd=str(tmp_path))
    try:
        keyring = json.loads((tmp_path / ".smcp" / "keyring.json").read_text())
        assert oct((tmp_path / ".smcp" / "keyring.json").stat().st_mode & 0o777) == "0o600"
        monkeypatch.chdir(tmp_path)
        client = smcp.Client.from_env(env={})
        assert client.client_id == "local" and client.url == served.url  # the file records where it listens
        assert client.identity()["server_id"] == keyring["server_id"]
        assert client.call("batch_sum", {"numbers": [1, 2, 3.5]}) == {"count": 3, "total": 6.5}
    finally:
        served.stop()
