"""Hash chain over an aggregate's events: each event stores the hash of the one before.

The digest covers the event's topic, aggregate id, version and its stored state (all
but the ``hash`` field itself), so editing any stored byte of any event, deleting one
or reordering them breaks the chain. Verification works on the stored state, before
upcasting, so schema migrations never invalidate history.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64
# The canonical form every stored hash was computed with: never change it.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_digest(
    topic: str, originator_id: str, originator_version: int, state: Mapping[str, Any]
) -> str:
    body = dict(state)
    body.pop("hash", None)
    canonical = _CANONICAL.encode(
        {"topic": topic, "id": originator_id, "version": originator_version, "state": body}
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredLink:
    """One stored event as the chain sees it."""

    topic: str
    originator_id: str
    originator_version: int
    state: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    ok: bool
    events_checked: int
    broken_at_version: int | None = None
    problem: str | None = None


def verify_chain(links: Iterable[StoredLink]) -> ChainVerdict:
    """Check every link's own hash and its pointer to the previous one."""
    expected_prev = GENESIS_HASH
    expected_version = 1
    checked = 0
    for link in links:
        if link.originator_version != expected_version:
            return ChainVerdict(
                False,
                checked,
                link.originator_version,
                f"version {link.originator_version} follows version {expected_version - 1}",
            )
        if link.state.get("prev_hash") != expected_prev:
            return ChainVerdict(
                False,
                checked,
                link.originator_version,
                "prev_hash does not match the hash of the previous event",
            )
        digest = event_digest(link.topic, link.originator_id, link.originator_version, link.state)
        if link.state.get("hash") != digest:
            return ChainVerdict(
                False,
                checked,
                link.originator_version,
                "stored content does not match its hash (the event was altered)",
            )
        expected_prev = digest
        expected_version += 1
        checked += 1
    return ChainVerdict(True, checked)
