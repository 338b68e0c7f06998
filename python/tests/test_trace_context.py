"""SPEC §10: the HTTP transport sends the active span's W3C trace context as headers (opentelemetry-api installed)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from smcp.transport import HttpTransport

trace = pytest.importorskip("opentelemetry.trace")
otel_context = pytest.importorskip("opentelemetry.context")


def serve_once(seen: dict[str, Any]) -> HTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen["traceparent"] = self.headers.get("traceparent")
            seen["tracestate"] = self.headers.get("tracestate")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_active_span_goes_as_traceparent() -> None:
    seen: dict[str, Any] = {}
    server = serve_once(seen)
    try:
        transport = HttpTransport(f"http://127.0.0.1:{server.server_address[1]}/mcp")
        transport.send(b"{}")
        assert seen["traceparent"] is None, "no span active: no header"
        span_context = trace.SpanContext(
            trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
            span_id=0x00F067AA0BA902B7,
            is_remote=False,
            trace_flags=trace.TraceFlags(1),
        )
        token = otel_context.attach(trace.set_span_in_context(trace.NonRecordingSpan(span_context)))
        try:
            transport.send(b"{}")
        finally:
            otel_context.detach(token)
        assert seen["traceparent"] == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    finally:
        server.shutdown()
