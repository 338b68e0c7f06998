"""Configuration like the CLI's: arguments, then ``SMCP_*`` variables, then the keyring file.

The keyring file is ``.smcp/keyring.json`` (or ``config=`` / ``SMCP_CONFIG``),
the one ``smcp serve`` writes on its first run. A caller resolves:

- client id: ``client_id`` / ``SMCP_CLIENT_ID`` / the file's first client;
- client secret: ``client_secret`` / ``SMCP_CLIENT_SECRET`` /
  ``client_secrets[id]`` (an Ed25519 client's private key) / the first HMAC
  key of ``clients[id]``;
- server key: ``server_key`` (alias ``server_secret``) / ``SMCP_SERVER_KEY`` /
  ``SMCP_SERVER_SECRET`` / from the file, the one matching the client's
  algorithm: the pinned ``server_key`` for an Ed25519 client, the HMAC entries
  of ``server_secret`` for an HMAC client (else whichever the file has);
- server id: ``server_id`` / ``SMCP_SERVER_ID`` / the file's / ``smcp-local``;
- url: ``url`` / ``SMCP_URL`` / where ``.smcp/servers.json`` (beside the keyring
  file) says the server with this id listens / the file's / ``http://127.0.0.1:8787/mcp``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from . import canonical
from .errors import SmcpUsageError
from .keys import SECRET_PREFIX, is_ed25519_text

DEFAULT_KEYRING_PATH = os.path.join(".smcp", "keyring.json")
DEFAULT_URL = "http://127.0.0.1:8787/mcp"
DEFAULT_SERVER_ID = "smcp-local"


def keyring_path(config: str | None, env: Mapping[str, str]) -> str:
    """The keyring file in force: ``config``, then ``SMCP_CONFIG``, then ``.smcp/keyring.json``."""
    chosen = config if config is not None else env.get("SMCP_CONFIG")
    return os.path.abspath(chosen if chosen is not None else DEFAULT_KEYRING_PATH)


def read_keyring(path: str) -> dict[str, Any] | None:
    """The keyring file as a dict, or None when there is none. Refuses one readable by others."""
    if not os.path.exists(path):
        return None
    if os.name == "posix":
        mode = os.stat(path).st_mode & 0o777
        if mode & 0o077:
            raise SmcpUsageError(f"{path} is readable by other users (mode {mode:o}); run: chmod 600 {path}")
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        value = canonical.loads(data)
    except canonical.JsonRejected as error:
        raise SmcpUsageError(f"{path} is not valid JSON ({error}); fix it or delete it to start over") from None
    if not isinstance(value, dict):
        raise SmcpUsageError(f"{path}: expected a JSON object; fix it or delete the file to start over")
    return value


def _field(file: dict[str, Any], path: str, name: str, types: tuple[type, ...], what: str) -> Any:
    value = file.get(name)
    if value is not None and not isinstance(value, types):
        raise SmcpUsageError(f"{path}: {name} must be {what}; fix it or delete the file to start over")
    return value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _is_hmac(key: Any) -> bool:
    return isinstance(key, str) and not is_ed25519_text(key)


def _is_ed25519_secret(key: Any) -> bool:
    if isinstance(key, str):
        return key.startswith(SECRET_PREFIX)
    return isinstance(key, dict) and "d" in key


def _client_keys(entry: Any) -> list[Any]:
    # A client entry is a key, a list of keys, or an object whose `keys` holds them (plus settings, ignored here).
    if isinstance(entry, dict) and "kty" not in entry:
        return _as_list(entry.get("keys"))
    return _as_list(entry)


def resolve(*, config: str | None, env: Mapping[str, str] | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of a client, resolved as the module doc says."""
    env = os.environ if env is None else env
    options = dict(overrides)
    path = keyring_path(config, env)
    file = read_keyring(path) or {}
    # Every field a caller reads is checked up front, so a broken file is named whatever else is set.
    clients = _field(file, path, "clients", (dict,), "an object of id -> key")
    client_secrets = _field(file, path, "client_secrets", (dict,), "an object of id -> ed25519-secret: key")
    pinned = _as_list(_field(file, path, "server_key", (str, dict, list), "a key or a list of keys"))
    server_secrets = _as_list(_field(file, path, "server_secret", (str, list), "a key or a list of keys"))
    file_server_id = _field(file, path, "server_id", (str,), "a string")
    file_url = _field(file, path, "url", (str,), "a string")

    def missing(what: str, arg: str, variable: str) -> SmcpUsageError:
        return SmcpUsageError(
            f"missing {what}: pass {arg} or set {variable} "
            "(or run `smcp serve` in this folder to create .smcp/keyring.json)"
        )

    def pick(name: str, variables: tuple[str, ...]) -> Any:
        if options.get(name) is not None:
            return options.pop(name)
        options.pop(name, None)
        for variable in variables:
            if env.get(variable) is not None:
                return env[variable]
        return None

    client_id = pick("client_id", ("SMCP_CLIENT_ID",))
    if client_id is None and clients:
        client_id = next(iter(clients))
    if client_id is None:
        raise missing("client id", "client_id=…", "SMCP_CLIENT_ID")

    client_secret = pick("client_secret", ("SMCP_CLIENT_SECRET",))
    if client_secret is None and client_secrets and client_id in client_secrets:
        client_secret = client_secrets[client_id]
    if client_secret is None and clients and client_id in clients:
        client_secret = next((k for k in _client_keys(clients[client_id]) if _is_hmac(k)), None)
    if client_secret is None:
        raise missing(f"secret for client '{client_id}'", "client_secret=…", "SMCP_CLIENT_SECRET")

    if options.get("server_key") is None and options.get("server_secret") is not None:
        options["server_key"] = options["server_secret"]  # the CLI's --server-secret alias
    options.pop("server_secret", None)
    server_key = pick("server_key", ("SMCP_SERVER_KEY", "SMCP_SERVER_SECRET"))
    if server_key is None:
        hmac_entries = [k for k in server_secrets if _is_hmac(k)]
        # The server answers each client in its own algorithm (SPEC §7): take the keys that can verify it.
        preferred, fallback = (pinned, hmac_entries) if _is_ed25519_secret(client_secret) else (hmac_entries, pinned)
        chosen = preferred or fallback
        server_key = chosen[0] if len(chosen) == 1 else (chosen or None)
    if server_key is None:
        raise missing("server key", "server_key=…", "SMCP_SERVER_KEY")

    server_id = pick("server_id", ("SMCP_SERVER_ID",))
    if server_id is None:
        server_id = file_server_id or DEFAULT_SERVER_ID
    url = pick("url", ("SMCP_URL",))
    if url is None:
        url = _server_url(path, server_id) or file_url or DEFAULT_URL
    return {
        **options,
        "url": url,
        "client_id": client_id,
        "client_secret": client_secret,
        "server_key": server_key,
        "server_id": server_id,
    }


def _server_url(keyring: str, server_id: str) -> str | None:
    """Where ``smcp serve`` recorded that the server with this id listens (``.smcp/servers.json``), if it still runs."""
    path = os.path.join(os.path.dirname(keyring), "servers.json")
    try:
        with open(path, encoding="utf-8") as handle:
            entry = json.load(handle).get("servers", {}).get(server_id)
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("url"), str) or not isinstance(entry.get("pid"), int):
        return None
    try:
        os.kill(entry["pid"], 0)
    except ProcessLookupError:
        return None  # it died without removing its entry
    except PermissionError:
        pass  # alive, another user's
    return str(entry["url"])
