"""Bounds on what callers may send: no control characters, no unbounded JSON.

Anything stored must also travel through Kafka and into PostgreSQL text columns, so
NUL and other control characters, deeply nested objects, huge integers and oversized
payloads are refused at the command boundary with a message saying what and where.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 8
MAX_JSON_BYTES = 32 * 1024
MAX_KEY_LENGTH = 200
MAX_SAFE_INT = 2**53
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # all but tab, LF and CR
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


def check_text(value: str) -> str:
    """Refuse NUL and other control characters (tab, newline and CR are fine)."""
    bad = _CONTROL.search(value)
    if bad:
        msg = f"contains control character U+{ord(bad.group()):04X} at position {bad.start()}"
        raise ValueError(msg)
    return value


def check_json_object(value: dict[str, Any]) -> dict[str, Any]:
    """A JSON object of bounded depth and size, with checked keys, strings and numbers."""
    check_json_value(value)
    size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    if size > MAX_JSON_BYTES:
        msg = f"is {size} bytes of JSON; at most {MAX_JSON_BYTES} are allowed"
        raise ValueError(msg)
    return value


def check_json_value(value: Any, *, where: str = "", depth: int = 1) -> Any:
    """Any JSON value, checked like the values of ``check_json_object`` but of any size.

    ``depth`` is the value's own level: 1 for a command's JSON object; 0 for an envelope
    whose fields are bounded as a command's fields are. ``where`` prefixes the paths in
    the messages.
    """
    _check(value, where, depth)
    return value


def _check(value: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        msg = f"{where or 'value'}: nested deeper than {MAX_DEPTH} levels"
        raise ValueError(msg)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
                msg = f"{where or 'value'}: {_bad_key(key)}"
                raise ValueError(msg)
            inner = f"{where}.{_printable(key)}" if where else _printable(key)
            _text(key, f"{inner} (the key)")
            _check(item, inner, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check(item, f"{where}[{index}]", depth + 1)
    elif isinstance(value, str):
        _text(value, where)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INT:
            msg = f"{where}: integer out of range ({_digits(value)}; at most ±2**53)"
            raise ValueError(msg)
    elif isinstance(value, float):
        if not math.isfinite(value):
            msg = f"{where}: not a finite number"
            raise ValueError(msg)
    else:
        msg = f"{where}: {type(value).__name__} is not a JSON value"
        raise ValueError(msg)


def _text(value: str, where: str) -> None:
    try:
        check_text(value)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _printable(key: str) -> str:
    """The key for a message: control characters escaped, so it stays one clean line."""
    return _UNPRINTABLE.sub(lambda bad: f"\\u{ord(bad.group()):04x}", key)


def _bad_key(key: object) -> str:
    rule = f"keys must be 1 to {MAX_KEY_LENGTH} characters"
    if not isinstance(key, str):
        return f"a key is not text but {type(key).__name__}; {rule}"
    if not key:
        return f"a key is empty; {rule}"
    return f'the key "{_printable(key[:20])}…" has {len(key)} characters; {rule}'


def _digits(value: int) -> str:
    try:
        return f"{len(str(abs(value)))} digits"
    except ValueError:  # beyond Python's limit on int-to-text conversion
        return f"{value.bit_length()} bits"
