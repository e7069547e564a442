"""Aggregates a strict projector holds at a version: an event it could not apply (it
cannot be decoded, or the database refused it) leaves a gap, and every later event of
that aggregate is dead-lettered as ``gap: ...`` until the missing version is applied.

Found from the read model's dead letters, for ``leadflow verify`` and the projector's
log. The way out is ``WAY_OUT``.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from projections.store import Tx

WAY_OUT = (
    "make the event it could not apply readable (fix it, or add an upcaster), then "
    "`leadflow rebuild --from-store` projects the aggregate again from the event store"
)
_GAP = re.compile(r"^gap: expected version (\d+), got (\d+)$")


def gap_problem(expected: int, got: int) -> str:
    """The dead letter's problem for an event that does not follow the applied version."""
    return f"gap: expected version {expected}, got {got}"


@dataclass(frozen=True, slots=True)
class FrozenAggregate:
    aggregate_id: str
    stream: str
    version: int
    """The last version applied (0: not even created)."""
    held: int
    """Later events dead-lettered because of the gap."""
    cause: str
    """Why version ``version + 1`` was not applied."""

    def __str__(self) -> str:
        return (
            f"aggregate {self.aggregate_id} held at version {self.version} ({self.stream}): "
            f"{self.held} later events dead-lettered, since version {self.version + 1} was "
            f"not applied: {self.cause}"
        )


def frozen_aggregates(tx: Tx, only: Collection[str] | None = None) -> list[FrozenAggregate]:
    """Every aggregate (of ``only``, when given) with a dead-lettered event after the
    version it has; the cause is its first other dead letter of that stream."""
    where = "aggregate_id IS NOT NULL"
    params: list[Any] = []
    if only is not None:
        if not only:
            return []
        condition, params = tx.dialect.one_of("aggregate_id", sorted(only))
        where = f"{where} AND {condition}"
    letters = tx.execute(
        f"SELECT stream, aggregate_id, error FROM rm_dead_letters WHERE {where} "  # noqa: S608
        "ORDER BY stream, part, record_position",
        params,
    )
    held: dict[tuple[str, str], tuple[int, int]] = {}  # (stream, id) -> (count, highest)
    causes: dict[tuple[str, str], str] = {}
    for stream, aggregate_id, error in letters:
        key = (str(stream), str(aggregate_id))
        gap = _GAP.match(str(error))
        if gap is None:
            causes.setdefault(key, str(error))
            continue
        count, highest = held.get(key, (0, 0))
        held[key] = (count + 1, max(highest, int(gap.group(2))))
    versions = _versions(tx, {aggregate_id for _, aggregate_id in held})
    frozen = []
    for (stream, aggregate_id), (count, highest) in sorted(held.items()):
        version = versions.get(aggregate_id, 0)
        if highest > version:
            cause = causes.get((stream, aggregate_id), f"version {version + 1} never arrived")
            frozen.append(FrozenAggregate(aggregate_id, stream, version, count, cause))
    return frozen


def _versions(tx: Tx, ids: set[str]) -> dict[str, int]:
    if not ids:
        return {}
    versions: dict[str, int] = {}
    for table, column in (("rm_leads", "lead_id"), ("rm_deals", "deal_id")):
        condition, params = tx.dialect.one_of(column, sorted(ids))
        rows = tx.execute(f"SELECT {column}, version FROM {table} WHERE {condition}", params)  # noqa: S608
        versions.update((str(i), int(v)) for i, v in rows)
    return versions
