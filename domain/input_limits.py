"""Bounds on what callers may send: no control characters, no unbounded JSON.

Anything stored must also travel through Kafka and into PostgreSQL text columns, so
NUL and other control characters, deeply nested objects, huge integers and oversized
payloads are refused at the command boundary with a message saying what and where.
The same bounds decode JSON text (``load_json``), place timestamps in the accepted range
(``utc_timestamp``), keep invisible and control characters out of ids, names and keys
(``check_identifier``) and normalise identifiers (``normalise_identifier``).
"""

from __future__ import annotations

import json
import math
import re
import sys
import unicodedata
from datetime import UTC, date, datetime
from typing import Any

MAX_DEPTH = 8
MAX_DECODED_DEPTH = 500  # deeper text is refused before anything walks it recursively
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)  # exclusive
TIME_RANGE = "from 1970-01-01T00:00:00Z up to (not including) 2200-01-01T00:00:00Z"
DATE_RANGE = "1970-01-01 to 2199-12-31"
MAX_JSON_BYTES = 32 * 1024
MAX_KEY_LENGTH = 200
MAX_SAFE_INT = 2**53
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # all but tab, LF and CR
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
BIDI_CONTROLS = frozenset(  # the bidirectional marks, embeddings, overrides and isolates
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_REFUSED_CATEGORIES = {
    "Cc": "control character",
    "Cf": "format character",
    "Zl": "line separator",
    "Zp": "paragraph separator",
    "Cs": "surrogate",
    "Co": "private-use character",
    "Cn": "unassigned code point",
}
# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties) beyond the categories
# above: combining grapheme joiner, Hangul fillers, Khmer inherent vowels, variation
# selectors. Python counts them printable, but they show nothing.
_INVISIBLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180d\u180f\u3164\ufe00-\ufe0f\uffa0"
    "\U000e0100-\U000e01ef]"
)
IDENTIFIER_RULE = (
    "ids, names and keys may not hold control, format (zero-width, bidirectional), "
    "line or paragraph separator, invisible, surrogate, private-use or unassigned characters"
)


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
            _identifier(key, f"{inner} (the key)")
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


def _identifier(value: str, where: str) -> None:
    try:
        check_identifier(value)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _printable(key: str) -> str:
    """The key for a message: refused characters escaped, so it stays one clean line."""
    if _plain(key):
        return key
    return "".join(_escaped(char) if _refusal(char) else char for char in key)


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


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


# --- JSON text ---------------------------------------------------------------------------


class JsonRefused(ValueError):
    """JSON text that is not decoded: ``beyond_limits`` when it is JSON, but too deep or
    too long a number for leadflow; otherwise it is not JSON (NaN, Infinity)."""

    def __init__(self, reason: str, *, beyond_limits: bool) -> None:
        self.beyond_limits = beyond_limits
        super().__init__(reason)


def load_json(text: str, *, unique_keys: bool = False) -> Any:
    """``json.loads`` that can neither exhaust the stack nor fail with an odd error.

    Text that is not JSON raises ``json.JSONDecodeError`` (callers say where); NaN and
    Infinity, nesting beyond ``MAX_DECODED_DEPTH`` levels and integers beyond Python's
    digit limit raise ``JsonRefused``, and so does a key given twice in one object with
    ``unique_keys`` (two readers of such a text may each see another value). The value
    returned can be walked recursively.
    """
    try:
        value = (_UNIQUE_KEYS_DECODER if unique_keys else _DECODER).decode(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise JsonRefused(_TOO_DEEP, beyond_limits=True) from None
    except JsonRefused:
        raise
    except ValueError:  # beyond Python's limit on int-from-text conversion
        digits = sys.get_int_max_str_digits()
        reason = f"not acceptable JSON: a number has more than {digits} digits"
        raise JsonRefused(reason, beyond_limits=True) from None
    brackets = text.count("[") + text.count("{")  # at least the depth: skips most walks
    if brackets > MAX_DECODED_DEPTH and _deeper_than(value, MAX_DECODED_DEPTH):
        raise JsonRefused(_TOO_DEEP, beyond_limits=True)
    return value


_TOO_DEEP = f"not acceptable JSON: nested far deeper than {MAX_DEPTH} levels"


def _reject_constant(name: str) -> object:
    raise JsonRefused(f"not JSON: {name} is not valid JSON", beyond_limits=False)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            msg = f'not acceptable JSON: an object has the key "{_printable(key[:40])}" twice'

            raise JsonRefused(msg, beyond_limits=False)
        value[key] = item
    return value


# one of each, not one per call
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_UNIQUE_KEYS_DECODER = json.JSONDecoder(
    parse_constant=_reject_constant, object_pairs_hook=_unique_keys
)


def _deeper_than(value: Any, limit: int) -> bool:
    """True if arrays and objects nest more than ``limit`` levels (no recursion)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        if depth > limit:
            return True
        pending.extend((inner, depth + 1) for inner in item)
    return False


# --- timestamps --------------------------------------------------------------------------


def in_time_range(value: datetime) -> datetime:
    """``value`` (naive means UTC) with its offset, if it lies in the accepted range."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not EARLIEST <= aware < LATEST:
        msg = f"{value.isoformat()} is outside the accepted range of timestamps, {TIME_RANGE}"
        raise ValueError(msg)
    return aware


def utc_timestamp(value: datetime) -> datetime:
    """The same instant in UTC (naive means UTC), if it lies in the accepted range."""
    return in_time_range(value).astimezone(UTC)


def date_in_range(value: date) -> date:
    """A calendar date within the years of the accepted range (1970 to 2199)."""
    if not EARLIEST.date() <= value < LATEST.date():
        msg = f"{value.isoformat()} is outside the accepted range of dates, {DATE_RANGE}"
        raise ValueError(msg)
    return value


# --- identifiers -------------------------------------------------------------------------


def check_identifier(value: str) -> str:
    """``value`` if it holds no character an id, a name or a key may not hold.

    Refused: the general categories control (Cc), format (Cf: zero-width, bidi and
    other invisible formatting), line and paragraph separator (Zl, Zp), surrogate (Cs),
    private use (Co) and unassigned (Cn), and every other default-ignorable code point.
    Such characters make two ids that look the same differ, or rewrite a terminal line.
    """
    if _plain(value):
        return value
    for position, char in enumerate(value):
        kind = _refusal(char)
        if kind is not None:
            name = unicodedata.name(char, "")
            named = f" ({name})" if name else ""
            msg = (
                f"contains {kind} U+{ord(char):04X}{named} at position {position}; "
                f"{IDENTIFIER_RULE}"
            )
            raise ValueError(msg)
    return value


def check_identifier_input(value: object) -> object:
    """``check_identifier`` for a field's raw input, before trimming can hide a character
    (a trailing U+2028 or U+0085 is refused, not trimmed); other types pass unchanged."""
    return check_identifier(value) if isinstance(value, str) else value


def _plain(value: str) -> bool:
    """True if ``value`` surely holds no refused character (the common, fast case)."""
    return value.isprintable() and not _INVISIBLE.search(value)


def _refusal(char: str) -> str | None:
    """What kind of refused character ``char`` is, or None."""
    if char in _ZERO_WIDTH:
        return "zero-width character"
    if char in BIDI_CONTROLS:
        return "bidirectional formatting character"
    kind = _REFUSED_CATEGORIES.get(unicodedata.category(char))
    if kind is None and _INVISIBLE.match(char):
        return "invisible character"
    return kind


def normalise_identifier(value: str) -> str:
    """An external id as compared: NFKC, trimmed, and case-folded if it is an email,
    refused if it holds a character ``check_identifier`` refuses: two ids that look the
    same must be the same id."""
    text = comparable_identifier(check_identifier(value))
    if not text:
        msg = "is empty"
        raise ValueError(msg)
    return text


def comparable_identifier(value: str) -> str:
    """The form in which two external ids are compared: NFKC, trimmed, emails case-folded.
    Applied without checks, so a look-up by a malformed id simply finds nothing."""
    text = unicodedata.normalize("NFKC", value).strip()
    return text.casefold() if "@" in text else text
