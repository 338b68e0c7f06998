from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import support  # noqa: E402
from hypothesis import settings  # noqa: E402

import smcp  # noqa: E402

# No example database in the repository; failures print the example and a blob to reproduce it. The
# deadline is a bound on one example (a parse that never ends fails it), generous for a loaded machine.
settings.register_profile("smcp", database=None, print_blob=True, deadline=10_000)
settings.load_profile("smcp")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.RealServer]:
    """One real `smcp serve` (memory store) with two HMAC clients, for the whole session."""
    folder = tmp_path_factory.mktemp("serve")
    real = support.RealServer(
        [
            "--port", "0",
            "--store", "memory",
            "--config", str(folder / "keyring.json"),
            "--server-id", support.SERVER_ID,
            "--server-secret", support.SERVER_SECRET,
            "--client", f"{support.CLIENT_ID}={support.CLIENT_SECRET}",
            "--client", f"{support.OTHER_ID}={support.OTHER_SECRET}",
        ]
    )  # fmt: skip
    yield real
    real.stop()


@pytest.fixture
def client(server: support.RealServer) -> smcp.Client:
    return smcp.Client(
        server.url,
        client_id=support.CLIENT_ID,
        client_secret=support.CLIENT_SECRET,
        server_id=support.SERVER_ID,
        server_key=support.SERVER_SECRET,
    )


@pytest.fixture
def fake() -> Iterator[Callable[..., support.FakeServer]]:
    """Starts fake servers for a test; all are closed after it."""
    started: list[support.FakeServer] = []

    def start(handler: Callable[[Any], Any], signer: support.Signer | None = None) -> support.FakeServer:
        server = support.FakeServer(handler, signer)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
