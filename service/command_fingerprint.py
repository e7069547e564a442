"""A command's fingerprint: SHA-256 of its canonical content, for the command ledger.

Canonical: the command's fields without ``command_id`` and ``correlation_id``, an absent
field and a null one alike (except where null means "clear it", as ``expected_close_date``
of ``update_deal``), timestamps in UTC, amounts without trailing zeros, keys sorted. So
the same command written with ``Z`` or ``+00:00``, with ``"actor": null`` or without
``actor``, has one fingerprint. A time the sender did not give, stamped when the command
was received (the CLI's default "now", see ``stamped_on_receipt``), is not content: the
same command sent again with its id is the same command.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from domain import commands as c

_NOT_CONTENT = frozenset({"command_id", "correlation_id"})
# Fields whose explicit null asks for a change (clear the value), unlike their absence.
_NULL_MEANS_CLEAR: dict[type[c.Command], frozenset[str]] = {
    c.UpdateDeal: frozenset({"expected_close_date"}),
}


C = TypeVar("C", bound=c.Command)

# Ledger ids leadflow derives itself: a sender's id with one of these prefixes could take
# the place of an engagement's or an import line's and make it a false duplicate.
DERIVED_ID_PREFIXES = ("engagement:", "sha256:")


def sent_id_refusal(command_id: str | None) -> str | None:
    """Why a command id a sender chose may not be used, or None."""
    prefix = next((p for p in DERIVED_ID_PREFIXES if (command_id or "").startswith(p)), None)
    if prefix is None:
        return None
    return (
        f"command id {command_id!r} starts with {prefix!r}, which leadflow reserves for the "
        "ids it derives (engagements, import lines without an id)"
    )


def stamped_on_receipt(command: C) -> C:
    """The command with its ``occurred_at`` marked as stamped on receipt, not sent."""
    copy = command.model_copy()
    copy.__pydantic_fields_set__.discard("occurred_at")
    return copy


def canonical_content(command: c.Command) -> str:
    left_out = set(_NOT_CONTENT)
    if "occurred_at" not in command.model_fields_set:
        left_out.add("occurred_at")
    content = command.model_dump(mode="python", exclude_none=True, exclude=left_out)
    for name in _NULL_MEANS_CLEAR.get(type(command), frozenset()):
        if name in command.model_fields_set and getattr(command, name) is None:
            content[name] = None
    return json.dumps(
        _canonical(content), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def fingerprint(command: c.Command) -> bytes:
    return hashlib.sha256(canonical_content(command).encode("utf-8")).digest()


def content_command_id(command: c.Command) -> str:
    """The id of a command sent without one (an import line): its fingerprint."""
    return "sha256:" + fingerprint(command).hex()


def summary(command: c.Command) -> str:
    """``open_deal D-9``: the command's name and the ref it addresses."""
    ref = getattr(command, "deal", None) or getattr(command, "lead", None) or ""
    name: str = getattr(command, "command", type(command).__name__)
    return f"{name} {ref}".strip()[:200]


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(_canonical(v) for v in value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, UUID):
        return str(value)
    return value
