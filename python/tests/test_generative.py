"""Generative tests (hypothesis): whatever bytes come back, the client ends in a result that
verified, or in SmcpError(origin="local"), and always in bounded time."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import support
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import Reply, fake_client, response_for, signed

import smcp
from smcp import SmcpError, canonical

SIGNER = support.Signer(secret=support.SERVER_SECRET)
CLIENT = smcp.Client(
    "http://127.0.0.1:9/mcp",
    client_id=support.CLIENT_ID,
    client_secret=support.CLIENT_SECRET,
    server_id=support.SERVER_ID,
    server_key=support.SERVER_SECRET,
)

# JSON values as the seed's Python would hold them: any text (no lone surrogates), ints that fit a
# 64-character lexeme, finite floats (-0.0 included), nesting well under 64.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=15,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=6)


def same(a: Any, b: Any) -> bool:
    """Equal as JSON, with each number's kind and a float's sign kept."""
    return canonical.dumps(a) == canonical.dumps(b) and _kinds(a) == _kinds(b)


def _kinds(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _kinds(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_kinds(v) for v in value]
    if isinstance(value, float):
        return ("float", math.copysign(1.0, value))
    return type(value).__name__


def text_of(message: dict[str, Any], style: int) -> bytes:
    # The same message as different senders write it: compact, spaced, indented, raw UTF-8, reordered.
    if style == 0:
        return json.dumps(message).encode()
    if style == 1:
        return json.dumps(message, separators=(",", ":"), sort_keys=True).encode()
    if style == 2:
        return json.dumps(message, indent=2, ensure_ascii=False).encode("utf-8")
    return json.dumps(dict(reversed(list(message.items()))), ensure_ascii=False).encode("utf-8")


def local_failure(body: bytes, request_id: str = "req") -> SmcpError:
    with pytest.raises(SmcpError) as caught:
        CLIENT.verify_response(body, request_id)
    assert caught.value.origin == "local" and caught.value.received == body
    return caught.value


@given(result=json_objects, status=st.sampled_from(["ok", "accepted", "running", "done"]), style=st.integers(0, 3))
@settings(max_examples=80)
def test_any_signed_answer_verifies_to_exactly_what_was_signed(result: dict[str, Any], status: str, style: int) -> None:
    message = signed(response_for({"request_id": "req"}, status=status, result=result), SIGNER)
    response = CLIENT.verify_response(text_of(message, style), "req")
    assert same(response.result, result)


@given(args=json_objects)
@settings(max_examples=80)
def test_any_envelope_we_sign_verifies_in_the_seeds_code(args: dict[str, Any]) -> None:
    envelope = CLIENT.build_envelope("tool", args)
    parsed = json.loads(envelope.body)
    assert envelope.body == support.seed._canonical_json(parsed)  # the body is the canonical form
    assert parsed["signature"] == support.hmac_sign(support.CLIENT_SECRET, {k: v for k, v in parsed.items() if k != "signature"})
    assert same(parsed["args"], args)


@given(body=st.binary(max_size=600))
@settings(max_examples=200)
def test_random_bytes_are_refused(body: bytes) -> None:
    local_failure(body)


@given(
    message=st.dictionaries(
        st.sampled_from(["v", "request_id", "ts_ms", "ok", "server_id", "status", "result", "error", "x"]), json_values
    )
)
@settings(max_examples=80)
def test_random_documents_signed_correctly_are_refused_unless_well_formed(message: dict[str, Any]) -> None:
    local_failure(json.dumps(signed(message, SIGNER)).encode())


@given(result=json_objects, data=st.data())
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
def test_every_prefix_is_refused(result: dict[str, Any], data: st.DataObject) -> None:
    body = json.dumps(signed(response_for({"request_id": "req"}, result=result), SIGNER)).encode()
    cut = data.draw(st.integers(0, len(body) - 1))
    assert local_failure(body[:cut]).code == "bad_envelope"


@given(result=json_objects, data=st.data())
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_answers_are_refused_or_mean_the_same(result: dict[str, Any], data: st.DataObject) -> None:
    message = signed(response_for({"request_id": "req"}, result=result), SIGNER)
    body = bytearray(text_of(message, data.draw(st.integers(0, 3))))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(body) - 1))
        op = data.draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        if op == "flip":
            body[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set":
            body[at] = data.draw(st.sampled_from(b' "\\,:{}[]0123456789.eE-+tfnul\x00\xff'))
        elif op == "insert":
            body.insert(at, data.draw(st.sampled_from(b' \t\n"\\,:{}[]0.eE-')))
        else:
            del body[at]
    try:
        response = CLIENT.verify_response(bytes(body), "req")
    except SmcpError as error:
        assert error.origin == "local"
        return
    # Only a change that leaves the signed content as it was may pass (e.g. whitespace between tokens).
    assert same(response.result, result) and response.status == "ok" and response.ts_ms == message["ts_ms"]


@given(
    kind=st.sampled_from(["random", "prefix", "mutated", "length-lie"]),
    payload=st.binary(max_size=300),
    cut=st.floats(0, 1, exclude_max=True),
)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_over_http_every_bad_answer_ends_in_a_local_error_in_time(fake: Any, kind: str, payload: bytes, cut: float) -> None:
    def handler(req: Any) -> Reply:
        whole = json.dumps(signed(response_for(req, result={"p": payload.hex()}), SIGNER)).encode()
        if kind == "random":
            return Reply(payload)
        if kind == "prefix":
            return Reply(whole[: int(len(whole) * cut)])
        if kind == "mutated":
            at = int(len(whole) * cut)
            return Reply(whole[:at] + bytes([whole[at] ^ 0x20]) + whole[at + 1 :])
        return Reply(whole[: int(len(whole) * cut)], content_length=len(whole))

    server = fake(handler)
    with pytest.raises(SmcpError) as caught:
        fake_client(server, timeout=2.0).call("x")
    assert caught.value.origin == "local" and caught.value.code in ("bad_envelope", "bad_signature", "unavailable")
