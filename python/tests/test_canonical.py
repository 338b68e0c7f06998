"""Canonical form (SPEC §2): writing it as the seed does, and reading messages strictly."""

from __future__ import annotations

import json

import peer  # test/interop/peer.py: the seed's random-document generator
import pytest
import support

from smcp import canonical
from smcp.canonical import JsonRejected


def test_canonical_bytes_equal_the_seeds_on_its_random_documents() -> None:
    docs = peer.op_random_docs({"seed": 1405, "n": 300})
    for doc in docs:
        parsed = canonical.loads(doc["text"].encode("utf-8"))
        assert canonical.dumps(parsed).decode() == doc["canonical"]
        # And what a JavaScript signer holds after JSON.parse (integral floats as ints).
        assert canonical.dumps(canonical.loads(doc["js_text"])).decode() == doc["js_canonical"]


def test_each_number_keeps_its_lexeme_kind() -> None:
    text = b'{"b": 6.0, "a": 6, "c": 1e2, "d": -0.0, "e": 1E-5, "f": 9007199254740993, "g": 1.5e16}'
    assert canonical.dumps(canonical.loads(text)) == (
        b'{"a":6,"b":6.0,"c":100.0,"d":-0.0,"e":1e-05,"f":9007199254740993,"g":1.5e+16}'
    )


def test_keys_sort_by_code_point_and_text_is_escaped_like_python() -> None:
    value = canonical.loads('{"\U0001f600": 1, "\uffff": 2, "é": "\u2028\x7f", "a": "\\ud83d\\ude00"}'.encode())
    assert canonical.dumps(value) == b'{"a":"\\ud83d\\ude00","\\u00e9":"\\u2028\\u007f","\\uffff":2,"\\ud83d\\ude00":1}'


@pytest.mark.parametrize(
    "text",
    [
        b'{"a":1,"a":1}',
        b'{"x":{"a":1,"b":2,"a":3}}',
        b'[{"k":1,"k":2}]',
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b'{"a":-Infinity}',
        b'{"a":1E400}',
        b'{"a":-1e999}',
        b'{"a":"\\ud800"}',
        b'{"a":"\\udc00x"}',
        b'{"\\ud800":1}',
        b'"\xed\xa0\x80"',  # an encoded surrogate: not UTF-8
        b'{"a":"\xff"}',
        b'{"a":"\xc0\xaf"}',  # overlong
        b"\xef\xbb\xbf{}",  # BOM
        b'{"a":1} x',
        b'{"a":"\x01"}',
        b"",
        b"{",
        b'{"a":01}',
        b"[1,]",
    ],
)
def test_refused_texts(text: bytes) -> None:
    with pytest.raises(JsonRejected):
        canonical.loads(text)


def test_number_lexemes_up_to_64_characters() -> None:
    assert canonical.loads(b"[" + b"1" * 64 + b"]") == [int("1" * 64)]
    assert canonical.loads(b"[0." + b"1" * 62 + b"]")
    for lexeme in (b"1" * 65, b"-" + b"1" * 64, b"0." + b"1" * 63, b"1e" + b"0" * 63):
        with pytest.raises(JsonRejected, match="64"):
            canonical.loads(b"[" + lexeme + b"]")


@pytest.mark.parametrize("open_, close", [(b"[", b"]"), (b'{"a":', b"}")])
def test_nesting_up_to_64_levels(open_: bytes, close: bytes) -> None:
    canonical.loads(open_ * 64 + b"1" + close * 64)
    with pytest.raises(JsonRejected, match="64"):
        canonical.loads(open_ * 65 + b"1" + close * 65)


def test_very_deep_nesting_is_refused_not_a_crash() -> None:
    with pytest.raises(JsonRejected):
        canonical.loads(b"[" * 200_000 + b"]" * 200_000)
    with pytest.raises(JsonRejected):
        canonical.loads(b"[" * 200_000)


def test_a_valid_surrogate_pair_is_one_code_point() -> None:
    assert canonical.loads(b'"\\ud83d\\ude00"') == "\U0001f600"


def test_rejections_never_quote_the_input() -> None:
    with pytest.raises(JsonRejected) as caught:
        canonical.loads(b'{"secret-looking-key": "hunter2", "secret-looking-key": 1}')
    assert "hunter2" not in str(caught.value) and "secret-looking" not in str(caught.value)


def test_outgoing_values_need_one_canonical_form() -> None:
    shared = [1, 2]
    canonical.check_outgoing({"a": shared, "b": shared, "t": (1, 2.5), "n": None, "big": 2**70})
    loop: list = []
    loop.append(loop)
    for bad in ({1: "a"}, {"a": float("nan")}, {"a": float("inf")}, {"a": {1, 2}}, {"a": b"x"}, {"a": loop}):
        with pytest.raises((TypeError, ValueError)):
            canonical.check_outgoing(bad)


def test_outgoing_bytes_are_what_the_seed_signs() -> None:
    value = {"numbers": [1.5, 2, 1e21, 1e-7, -0.0], "s": "é😀\x00", "\uffff": [2**70]}
    assert canonical.dumps(value) == support.seed._canonical_json(value)
    assert json.loads(canonical.dumps(value)) == value


def test_objects_up_to_10000_members() -> None:
    at_cap = json.dumps({f"k{i}": i for i in range(10_000)})
    assert len(canonical.loads(at_cap)) == 10_000
    over = json.dumps({"outer": {f"k{i}": i for i in range(10_001)}})
    with pytest.raises(JsonRejected, match="more than 10000 members"):
        canonical.loads(over)
