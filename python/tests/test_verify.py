"""Response verification (SPEC §1, §3), on bodies made by the seed's code or by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest
import support

from smcp import ERROR_CODES, SmcpError, keys
from smcp.messages import RESPONSE_FIELDS, Response, result_of, verify_response

REQUEST = {"request_id": "req-1"}
SIGNER = support.Signer(secret=support.SERVER_SECRET)


def verify(
    body: bytes | str, *, request_id: str = "req-1", now: int | None = None, server_key: Any = support.SERVER_SECRET
) -> Response:
    return verify_response(
        body.encode() if isinstance(body, str) else body,
        request_id=request_id,
        server_id=support.SERVER_ID,
        keys=keys.verify_keys(server_key),
        now_ms=support.now_ms() if now is None else now,
        freshness_ms=300_000,
    )


def refused(body: bytes | str, code: str, **kw: Any) -> SmcpError:
    with pytest.raises(SmcpError) as caught:
        verify(body, **kw)
    error = caught.value
    assert (error.code, error.origin) == (code, "local"), error
    assert error.received == (body.encode() if isinstance(body, str) else body)
    return error


def test_a_seed_signed_answer_verifies_with_its_float_kept() -> None:
    # The seed serialises with json.dumps' default separators and signs the canonical form.
    fields = support.response_for(REQUEST, result={"count": 3, "total": 6.0})
    body = json.dumps(support.signed(fields, SIGNER))
    response = verify(body)
    assert response.result == {"count": 3, "total": 6.0} and isinstance(response.result["total"], float)
    assert response.body == body.encode()
    # The same answer with 6.0 written as 6 is another message: its signature no longer holds.
    refused(body.replace("6.0", "6"), "bad_signature")


def test_key_order_and_whitespace_of_the_text_do_not_matter() -> None:
    fields = support.signed(support.response_for(REQUEST, result={"b": [1, {"z": 1, "a": 2}]}), SIGNER)
    reordered = {k: fields[k] for k in reversed(list(fields))}
    assert verify(json.dumps(reordered, indent=3, ensure_ascii=False)).result == {"b": [1, {"z": 1, "a": 2}]}


@pytest.mark.parametrize("name", RESPONSE_FIELDS)
def test_each_missing_field_is_bad_envelope(name: str) -> None:
    message = support.signed(support.response_for(REQUEST), SIGNER)
    del message[name]
    error = refused(json.dumps(message), "bad_envelope")
    assert error.details == {"issues": [{"path": [name], "code": "invalid_type"}], "more": 0}


def test_an_extra_field_is_bad_envelope_and_not_echoed() -> None:
    message = support.signed({**support.response_for(REQUEST), "sneaky_extra": 1}, SIGNER)
    error = refused(json.dumps(message), "bad_envelope")
    assert error.details == {"issues": [{"path": [], "code": "unrecognized_keys"}], "more": 0}
    assert "sneaky_extra" not in str(error)


@pytest.mark.parametrize(
    "name, value",
    [
        ("v", "mcp/0.2"),
        ("v", None),
        ("request_id", 1),
        ("ts_ms", "1795304232049"),
        ("ts_ms", True),
        ("ts_ms", None),
        ("ts_ms", 2**53),  # beyond a safe integer, as the TypeScript client refuses
        ("ts_ms", -(2**53)),
        ("ok", 1),
        ("ok", "true"),
        ("server_id", None),
        ("status", "finished"),
        ("status", None),
        ("result", []),
        ("result", "x"),
        ("error", 5),
        ("error", {}),
    ],
)
def test_wrong_types_are_bad_envelope(name: str, value: Any) -> None:
    # Signed correctly: the shape is checked for its own sake, before the signature.
    message = support.signed({**support.response_for(REQUEST), name: value}, SIGNER)
    refused(json.dumps(message), "bad_envelope")


def test_issues_are_bounded_and_name_only_response_fields() -> None:
    error = refused(b"[]", "bad_envelope")
    assert error.details == {"issues": [{"path": [], "code": "invalid_type"}], "more": 0}
    wrong = {name: [] for name in RESPONSE_FIELDS}
    error = refused(json.dumps({**wrong, **{f"k{i}": 1 for i in range(30)}}), "bad_envelope")
    assert len(error.details["issues"]) == 10 and error.details["more"] == 0
    assert {tuple(i["path"]) for i in error.details["issues"]} <= {(n,) for n in RESPONSE_FIELDS} | {()}


def test_ok_must_be_false_exactly_when_status_is_error() -> None:
    for status, ok in (("error", True), ("ok", False), ("done", False), ("running", False)):
        message = support.signed(support.response_for(REQUEST, status=status, ok=ok), SIGNER)
        refused(json.dumps(message), "bad_envelope")


@pytest.mark.parametrize("lexeme", ["{ts}.0", "{ts}e0", "{ts}E+0", "1.795e12"])
def test_ts_ms_must_be_an_integer_lexeme(lexeme: str) -> None:
    ts = support.now_ms()
    text = lexeme.format(ts=ts)
    # Signed over the canonical form of the float the lexeme holds: the signature is fine, the shape is not.
    fields = {**support.response_for(REQUEST), "ts_ms": float(text)}
    message = support.signed(fields, SIGNER)
    body = json.dumps({**message, "ts_ms": "TS"}).replace('"TS"', text)
    assert refused(body, "bad_envelope").details == {"issues": [{"path": ["ts_ms"], "code": "invalid_type"}], "more": 0}


def test_a_signed_signature_of_duplicate_keys_is_refused() -> None:
    # Signed over {"result": {"total": 1}}, sent with a second "total" a lax parser would keep instead.
    message = support.signed(support.response_for(REQUEST, result={"total": 1}), SIGNER)
    body = json.dumps(message).replace('{"total": 1}', '{"total": 1, "total": 1000000}')
    refused(body, "bad_envelope")
    body = json.dumps(message).replace('"status": "ok"', '"status": "ok", "status": "ok"')
    refused(body, "bad_envelope")


def test_signature_server_id_request_id_and_freshness() -> None:
    good = support.response_for(REQUEST)
    refused(json.dumps(support.signed(good, support.Signer(secret="another-secret-0123456789"))), "bad_signature")
    refused(json.dumps({**support.signed(good, SIGNER), "signature": "0" * 64}), "bad_signature")
    refused(json.dumps({**good, "signature": ""}), "bad_signature")
    refused(json.dumps(support.signed({**good, "server_id": "someone-else"}, SIGNER)), "wrong_server")
    refused(json.dumps(support.signed(good, SIGNER)), "bad_envelope", request_id="req-2")
    now = good["ts_ms"]
    body = json.dumps(support.signed(good, SIGNER))
    assert verify(body, now=now + 300_000).ok and verify(body, now=now - 300_000).ok
    refused(body, "stale", now=now + 300_001)
    refused(body, "stale", now=now - 300_001)


def test_the_seeds_unsigned_error_is_never_a_result() -> None:
    refused('{"error": "bad signature"}', "bad_envelope")
    refused('{"error": "bad envelope", "details": "..."}', "bad_envelope")
    refused("seed server error: KeyError", "bad_envelope")
    refused(b"", "bad_envelope")
    refused(b"null", "bad_envelope")
    refused(b"[]", "bad_envelope")


def test_error_answers_become_server_errors() -> None:
    for code in sorted(ERROR_CODES):
        body = json.dumps(support.signed(support.error_for(REQUEST, code, {"retry_after_ms": 250}), SIGNER))
        with pytest.raises(SmcpError) as caught:
            result_of(verify(body))
        error = caught.value
        assert (error.code, error.origin, error.message) == (code, "server", "said the fake")
        assert error.details == {"retry_after_ms": 250}
        assert error.retry_after_ms == (250 if code == "rate_limited" else None)
        assert error.response.status == "error"


def test_an_unknown_error_code_is_internal() -> None:
    body = json.dumps(support.signed(support.error_for(REQUEST, "made_up_code"), SIGNER))
    with pytest.raises(SmcpError) as caught:
        result_of(verify(body))
    assert caught.value.code == "internal" and caught.value.origin == "server"


def test_retry_after_ms_must_be_a_whole_number() -> None:
    for details in ({"retry_after_ms": 1.5}, {"retry_after_ms": "100"}, {"retry_after_ms": -1}, {"retry_after_ms": True}, []):
        error = SmcpError("rate_limited", "x", origin="server", details=details)
        assert error.retry_after_ms is None


def test_errors_survive_pickling() -> None:
    import pickle

    body = json.dumps(support.signed(support.error_for(REQUEST, "rate_limited", {"retry_after_ms": 5}), SIGNER))
    with pytest.raises(SmcpError) as caught:
        result_of(verify(body))
    copy = pickle.loads(pickle.dumps(caught.value))
    expected = ("rate_limited", "said the fake", "server", 5, caught.value.response)
    assert (copy.code, copy.message, copy.origin, copy.retry_after_ms, copy.response) == expected
    local = refused(b"{", "bad_envelope")
    assert pickle.loads(pickle.dumps(local)).received == b"{"
