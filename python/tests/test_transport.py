"""The endpoint a URL names (as the TypeScript client's endpointUrl)."""

from __future__ import annotations

import pytest

from smcp.errors import SmcpUsageError
from smcp.transport import HttpTransport, endpoint


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://127.0.0.1:8787", "http://127.0.0.1:8787/mcp"),
        ("http://127.0.0.1:8787/", "http://127.0.0.1:8787/mcp"),
        ("http://example.com/api/mcp?x=1", "http://example.com:80/api/mcp?x=1"),
        ("https://example.com", "https://example.com:443/mcp"),
        ("http://[::1]:9000/mcp", "http://[::1]:9000/mcp"),
    ],
)
def test_urls(url: str, expected: str) -> None:
    assert endpoint(url).url == expected


def test_credentials_in_the_url_are_refused_without_quoting_them() -> None:
    for url in ("http://user:hunter2@example.com/mcp", "ftp://user:hunter2@example.com", "http://user:hunter2@h:99999"):
        with pytest.raises(SmcpUsageError) as caught:
            endpoint(url)
        assert "hunter2" not in str(caught.value)


def test_port_zero_is_kept_not_replaced_by_a_default() -> None:
    assert endpoint("http://127.0.0.1:0/mcp").port == 0


@pytest.mark.parametrize("url", ["ftp://example.com", "example.com:8787", "http://", "http://h:99999", "", "http://h:x/"])
def test_bad_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(SmcpUsageError, match="http://127.0.0.1:8787/mcp"):
        endpoint(url)


def test_bad_limits_are_usage_errors() -> None:
    for options in ({"timeout": 0}, {"timeout": -1}, {"max_response_bytes": 0}, {"max_response_bytes": 1.5}):
        with pytest.raises(SmcpUsageError):
            HttpTransport("http://127.0.0.1:1", **options)  # type: ignore[arg-type]
