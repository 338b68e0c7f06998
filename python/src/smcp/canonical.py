"""Canonical JSON (SPEC §2) and the strict parser that reads messages.

The canonical form *is* Python's ``json.dumps(obj, separators=(",", ":"),
sort_keys=True)``, so writing it needs nothing but the standard library. What
needs care is reading: a message is verified over its own text, so the parser
keeps each number's kind (``6.0`` stays a float, ``6`` an int) and refuses
what SPEC §2 refuses: duplicate keys, NaN and the infinities (including a
float that overflows), nesting deeper than 64, number lexemes longer than 64
characters, invalid UTF-8 and lone surrogates.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: Deepest container nesting a receiver accepts; the top-level object is depth 1.
MAX_DEPTH = 64
#: Longest number lexeme a receiver accepts.
MAX_NUMBER_LENGTH = 64
#: Most members one object may have (SPEC §2).
MAX_MEMBERS = 10_000

_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonRejected(ValueError):
    """Text that is not acceptable JSON under SPEC §2. The message never quotes the input."""


def dumps(value: Any) -> bytes:
    """The canonical bytes of a JSON value (pure ASCII)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=True, allow_nan=False).encode("ascii")


def check_outgoing(value: Any, where: str = "args") -> None:
    """Raises TypeError/ValueError for a value that has no single canonical JSON form.

    ``json.dumps`` would quietly turn a key ``1`` into ``"1"`` (and ``{1: .., "1": ..}``
    into a duplicate key); here only ``str`` keys, finite floats and JSON's own
    types pass.
    """
    try:
        _check_value(value, where, set())
    except RecursionError:
        raise ValueError(f"{where} is nested too deeply") from None


def _check_value(item: Any, path: str, ancestors: set[int]) -> None:
    if item is None or isinstance(item, (str, bool, int)):
        return
    if isinstance(item, float):
        if not math.isfinite(item):
            raise ValueError(f"{path} is {item!r}; JSON has no NaN or infinity")
        return
    if not isinstance(item, (dict, list, tuple)):
        raise TypeError(f"{path} is a {type(item).__name__}, which is not a JSON value")
    # Only a container inside itself is refused; the same list twice side by side is fine.
    if id(item) in ancestors:
        raise ValueError(f"{path} contains itself; JSON is a tree")
    ancestors.add(id(item))
    if isinstance(item, dict):
        for key, child in item.items():
            if not isinstance(key, str):
                raise TypeError(f"{path} has a key of type {type(key).__name__}; JSON keys are strings")
            _check_value(child, f"{path}[{key!r}]", ancestors)
    else:
        for index, child in enumerate(item):
            _check_value(child, f"{path}[{index}]", ancestors)
    ancestors.discard(id(item))


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise JsonRejected("duplicate key")
        obj[key] = value
    return obj


def _int(lexeme: str) -> int:
    if len(lexeme) > MAX_NUMBER_LENGTH:
        raise JsonRejected(f"a number lexeme is longer than {MAX_NUMBER_LENGTH} characters")
    return int(lexeme)


def _float(lexeme: str) -> float:
    if len(lexeme) > MAX_NUMBER_LENGTH:
        raise JsonRejected(f"a number lexeme is longer than {MAX_NUMBER_LENGTH} characters")
    value = float(lexeme)
    if not math.isfinite(value):
        raise JsonRejected("a number overflows to infinity")
    return value


def _constant(name: str) -> Any:
    raise JsonRejected(f"{name} is not JSON")


def loads(data: bytes | str) -> Any:
    """Parses one JSON document strictly (see the module doc). Raises :class:`JsonRejected`."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            text = bytes(data).decode("utf-8")  # strict: invalid bytes, encoded surrogates and overlongs fail
        except UnicodeDecodeError:
            raise JsonRejected("invalid UTF-8") from None
    else:
        text = data
    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_int=_int,
            parse_float=_float,
            parse_constant=_constant,
        )
    except JsonRejected:
        raise
    except RecursionError:
        raise JsonRejected("nesting too deep") from None
    except ValueError as error:
        # JSONDecodeError's msg and pos describe the problem without quoting the input.
        msg = getattr(error, "msg", "invalid JSON")
        pos = getattr(error, "pos", None)
        raise JsonRejected(msg if pos is None else f"{msg} at offset {pos}") from None
    _check_tree(value)
    return value


def _check_tree(value: Any) -> None:
    # json's own recursion stops near depth 1000; SPEC §2 stops at 64, and refuses lone surrogates.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise JsonRejected("a string holds a lone surrogate")
        elif isinstance(item, dict):
            if depth > MAX_DEPTH:
                raise JsonRejected(f"nesting deeper than {MAX_DEPTH}")
            if len(item) > MAX_MEMBERS:
                raise JsonRejected(f"an object has more than {MAX_MEMBERS} members")
            for key, child in item.items():
                if _SURROGATE.search(key):
                    raise JsonRejected("a key holds a lone surrogate")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > MAX_DEPTH:
                raise JsonRejected(f"nesting deeper than {MAX_DEPTH}")
            stack.extend((child, depth + 1) for child in item)


def canonical_without(message: dict[str, Any], key: str = "signature") -> bytes:
    """Canonical bytes of a parsed message with one top-level key left out (what is signed)."""
    return dumps({k: v for k, v in message.items() if k != key})
