"""Text that every store and wire format takes: no NUL (PostgreSQL text cannot hold it),
no lone surrogate (not encodable as UTF-8), and, for a reason, a bounded length.

Used for dead-letter reasons (Kafka headers, the ingest ledger, the read model's dead
letters) and for any other text that came from outside.
"""

from __future__ import annotations

REASON_MAX_CHARS = 2000


def storable_text(text: str) -> str:
    """``text`` with each NUL written as the visible escape ``\\u0000`` and each lone
    surrogate as ``\\udXXX``; anything else unchanged."""
    text = text.replace("\x00", "\\u0000")
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")


def storable_reason(text: str, max_chars: int = REASON_MAX_CHARS) -> str:
    """``storable_text`` on one line, at most ``max_chars`` characters: a longer one ends
    with a marker saying how long it was."""
    text = " ".join(storable_text(text).split())
    if len(text) <= max_chars:
        return text
    marker = f" … [truncated, {len(text)} characters]"
    return text[: max(0, max_chars - len(marker))] + marker
