"""Row-by-row comparison of the fact tables of two read-model stores (the business-time
versions only when both keep them: an older read model has them after a rebuild)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from projections.schema import FACT_TABLES, Table
from projections.store import ReadModelStore


@dataclass(frozen=True, slots=True)
class Difference:
    table: str
    key: dict[str, Any]
    problem: str

    def __str__(self) -> str:
        key = ", ".join(f"{k}={v}" for k, v in self.key.items())
        return f"{self.table}[{key}]: {self.problem}"


def compare_stores(
    live: ReadModelStore, rebuilt: ReadModelStore, names: tuple[str, str] = ("live", "rebuilt")
) -> list[Difference]:
    """Every row that is missing, extra or different in ``live`` compared to ``rebuilt``."""
    differences: list[Difference] = []
    versions = live.keeps_versions() and rebuilt.keeps_versions()
    for table in FACT_TABLES:
        if versions or not table.versions:
            differences += _compare_table(table, live, rebuilt, names)
    return differences


def _compare_table(
    table: Table, live: ReadModelStore, rebuilt: ReadModelStore, names: tuple[str, str]
) -> list[Difference]:
    width = len(table.key)
    ours = {row[:width]: row for row in live.rows(table)}
    theirs = {row[:width]: row for row in rebuilt.rows(table)}
    found: list[Difference] = []
    for key in sorted(ours.keys() | theirs.keys()):
        labelled = dict(zip(table.key, key, strict=True))
        if key not in ours:
            found.append(Difference(table.name, labelled, f"missing in the {names[0]} read model"))
        elif key not in theirs:
            found.append(Difference(table.name, labelled, f"only in the {names[0]} read model"))
        else:
            for column, a, b in zip(table.column_names, ours[key], theirs[key], strict=True):
                if a != b:
                    problem = f"{column}: {names[0]}={a!r} {names[1]}={b!r}"
                    found.append(Difference(table.name, labelled, problem))
    return found
