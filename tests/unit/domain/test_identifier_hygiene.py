"""Ids, names and keys hold no invisible, formatting or control character (issue 11).

Every refused character, in every field that names something, is refused naming the
field and the code point; ordinary international text still passes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.commands import COMMAND_ADAPTER, CaptureLead
from domain.input_limits import IDENTIFIER_RULE

AT = "2026-01-01T00:00:00Z"
CAPTURE = {"command": "capture_lead", "lead": "ada@example.com", "source": "web", "occurred_at": AT}
ENGAGE = {
    "command": "record_engagement",
    "lead": "ada@example.com",
    "event_id": "msg-1",
    "kind": "page_view",
    "occurred_at": AT,
}
MOVE = {"command": "move_deal", "deal": "D-1", "stage": "proposal", "occurred_at": AT}
OPEN = {"command": "open_deal", "deal": "D-1", "amount": "1", "occurred_at": AT}

# Where a field's text sits in a command, and the command carrying ``text`` there.
Placed = Callable[[str], dict[str, Any]]
FIELDS: dict[str, tuple[tuple[str, ...], Placed]] = {
    "lead": (("capture_lead", "lead"), lambda t: {**CAPTURE, "lead": t}),
    "deal": (("move_deal", "deal"), lambda t: {**MOVE, "deal": t}),
    "lead of a deal": (("open_deal", "lead"), lambda t: {**OPEN, "lead": t}),
    "event_id": (("record_engagement", "event_id"), lambda t: {**ENGAGE, "event_id": t}),
    "stage": (("move_deal", "stage"), lambda t: {**MOVE, "stage": t}),
    "pipeline": (("open_deal", "pipeline"), lambda t: {**OPEN, "pipeline": t}),
    "actor": (("capture_lead", "actor"), lambda t: {**CAPTURE, "actor": t}),
    "on_behalf_of": (("capture_lead", "on_behalf_of"), lambda t: {**CAPTURE, "on_behalf_of": t}),
    "command_id": (("capture_lead", "command_id"), lambda t: {**CAPTURE, "command_id": t}),
    "correlation_id": (
        ("capture_lead", "correlation_id"),
        lambda t: {**CAPTURE, "correlation_id": t},
    ),
    "attribute key": (("capture_lead", "attributes"), lambda t: {**CAPTURE, "attributes": {t: 1}}),
    "nested attribute key": (
        ("capture_lead", "attributes"),
        lambda t: {**CAPTURE, "attributes": {"company": {t: "x"}}},
    ),
    "property key": (
        ("record_engagement", "properties"),
        lambda t: {**ENGAGE, "properties": {t: 1}},
    ),
}

# Default-ignorable code points of other categories: they show nothing either
# (combining grapheme joiner, Hangul fillers, Khmer inherent vowels, variation selectors).
INVISIBLE = [
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180D),
    (0x180F, 0x180F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xE0100, 0xE01EF),
]


def invisible(char: str) -> bool:
    return any(low <= ord(char) <= high for low, high in INVISIBLE)


REPORTED = [
    "\u00ad",  # soft hyphen
    "\u034f",
    "\u180e",  # Mongolian vowel separator
    "\u2028",
    "\u2029",
    "\ufff9",
    "\ufffb",  # interlinear annotation
    "\U000e0001",  # language tag
    "\u200b",
    "\u200f",
    "\u2060",
    "\u206f",
    "\ufeff",
    "\u0085",
    "\u202e",
    "\ue000",  # private use
    "\u0378",  # unassigned
]
# Control, format, line and paragraph separator, surrogate, private use, unassigned.
refused_characters = st.one_of(
    st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"]),
    *(st.integers(low, high).map(chr) for low, high in INVISIBLE),
)


def refusal(data: dict[str, Any]) -> tuple[tuple[str | int, ...], str]:
    with pytest.raises(ValidationError) as refused:
        COMMAND_ADAPTER.validate_python(data)
    (error,) = refused.value.errors()
    return error["loc"], error["msg"]


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(sorted(FIELDS)),
    char=refused_characters,
    before=st.text("abcdef-0123456789", max_size=6),
    after=st.sampled_from(["", "x", "@example.com", " "]),
)
@example(field="lead", char="\u00ad", before="ada", after="@example.com")
@example(field="lead", char="\u2028", before="ada@example.com", after="")
@example(field="actor", char="\u202e", before="sdr", after="")
@example(field="command_id", char="\u009b", before="cmd-1", after="")
@example(field="attribute key", char="\u2066", before="title", after="")
def test_every_refused_character_in_every_field_is_refused_naming_field_and_code_point(
    field: str, char: str, before: str, after: str
) -> None:
    loc, placed = FIELDS[field]
    where, msg = refusal(placed(before + char + after))
    assert where == loc
    assert f"U+{ord(char):04X}" in msg
    assert f"at position {len(before)}" in msg
    assert IDENTIFIER_RULE in msg


@pytest.mark.parametrize("char", REPORTED, ids=lambda c: f"U+{ord(c):04X}")
def test_the_characters_the_acceptance_check_found_are_refused_in_refs(char: str) -> None:
    where, msg = refusal({**CAPTURE, "lead": f"ada{char}@example.com"})
    assert where == ("capture_lead", "lead")
    assert f"U+{ord(char):04X} " in msg


def test_the_refusal_says_what_the_character_is_and_escapes_it_in_a_key() -> None:
    _, soft_hyphen = refusal({**CAPTURE, "lead": "ada\u00ad@example.com"})
    assert soft_hyphen.startswith(
        "Value error, contains format character U+00AD (SOFT HYPHEN) at position 3; "
    )
    _, selector = refusal({**CAPTURE, "actor": "sdr\ufe0f"})
    assert "invisible character U+FE0F (VARIATION SELECTOR-16)" in selector
    _, key = refusal({**CAPTURE, "attributes": {"ti\u202etle": 1}})
    assert "ti\\u202etle (the key): contains bidirectional formatting character U+202E" in key
    assert "\u202e" not in key


INTERNATIONAL = [
    "José.Müller@exämple.de",
    "Ærøskøbing-42",
    "田中太郎@例え.jp",
    "김민준",
    "😀🚀@example.com",
    "محمد@example.com",
    "שרה.כהן@example.com",
    "Δημήτρης@παράδειγμα.gr",
    "Иван@пример.рф",
    "नमस्ते",
    "CRM 0042 (Acme Corp)",
]
# Letters, marks, digits, punctuation and symbols as people type them.
visible_text = st.text(
    st.characters(categories=["L", "M", "N", "P", "S"]).filter(lambda c: not invisible(c)),
    min_size=1,
    max_size=20,
)


@pytest.mark.parametrize("text", INTERNATIONAL)
def test_international_text_passes_in_every_field(text: str) -> None:
    for _, placed in FIELDS.values():
        COMMAND_ADAPTER.validate_python(placed(text))


@settings(max_examples=150, deadline=None)
@given(text=visible_text)
def test_visible_text_passes_as_a_ref_and_is_carried_as_nfkc(text: str) -> None:
    captured = COMMAND_ADAPTER.validate_python({**CAPTURE, "lead": text})
    assert isinstance(captured, CaptureLead)
    normal = unicodedata.normalize("NFKC", text).strip()
    assert captured.lead == (normal.casefold() if "@" in normal else normal)


@settings(max_examples=150, deadline=None)
@given(text=visible_text)
def test_visible_text_passes_as_an_actor_and_a_key_unchanged(text: str) -> None:
    captured = COMMAND_ADAPTER.validate_python(
        {**CAPTURE, "actor": text[:200], "attributes": {text: 1}}
    )
    assert captured.actor == text[:200] and text in captured.attributes  # type: ignore[union-attr]
