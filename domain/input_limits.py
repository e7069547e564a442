"""Bounds on what callers may send: no control characters, no unbounded JSON.

Anything stored must also travel through Kafka and into PostgreSQL text columns, so
NUL and other control characters, deeply nested objects, huge integers and oversized
payloads are refused at the command boundary with a message saying what and where.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 8
MAX_JSON_BYTES = 32 * 1024
MAX_KEY_LENGTH = 200
MAX_SAFE_INT = 2**53
_ALLOWED_CONTROLS = {"\t", "\n", "\r"}


def check_text(value: str) -> str:
    """Refuse NUL and other control characters (tab, newline and CR are fine)."""
    for index, char in enumerate(value):
        if (ord(char) < 32 and char not in _ALLOWED_CONTROLS) or ord(char) == 127:
            msg = f"contains control character U+{ord(char):04X} at position {index}"
            raise ValueError(msg)
    return value


def check_json_object(value: dict[str, Any]) -> dict[str, Any]:
    """A JSON object of bounded depth and size, with checked keys, strings and numbers."""
    _check(value, "", 1)
    size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    if size > MAX_JSON_BYTES:
        msg = f"is {size} bytes of JSON; at most {MAX_JSON_BYTES} are allowed"
        raise ValueError(msg)
    return value


def _check(value: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        msg = f"{where or 'value'}: nested deeper than {MAX_DEPTH} levels"
        raise ValueError(msg)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
                msg = f"{where or 'value'}: keys must be 1 to {MAX_KEY_LENGTH} characters"
                raise ValueError(msg)
            _text(key, f"{where}.{key}" if where else key)
            _check(item, f"{where}.{key}" if where else key, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check(item, f"{where}[{index}]", depth + 1)
    elif isinstance(value, str):
        _text(value, where)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INT:
            msg = f"{where}: integer out of range (at most ±2**53)"
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
