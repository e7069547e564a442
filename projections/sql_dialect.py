"""The little that differs between SQLite and PostgreSQL for the read-model SQL.

Statements are written once, with ``?`` placeholders and ``ON CONFLICT ... DO UPDATE``
(both databases accept that upsert syntax); ``Dialect.sql`` adapts the placeholders.
PostgreSQL's array parameters are written ``%b`` (binary) by this module itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from adapters.store_db import psycopg_placeholders

ColumnType = Literal["text", "int", "real"]
_SQLITE_MAX_PARAMETERS = 30_000  # SQLite allows 32766 per statement
# psycopg's placeholder for a parameter sent in binary: an array is then dumped in C,
# not quoted element by element as text
_BINARY = "%b"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True, slots=True)
class Dialect:
    name: Literal["sqlite", "postgresql"]
    integer: str
    real: str
    greatest: str

    def sql(self, statement: str) -> str:
        """The statement with this dialect's placeholders (the SQL never contains a literal ?)."""
        return statement if self.name == "sqlite" else psycopg_placeholders(statement)

    def column_type(self, kind: ColumnType) -> str:
        return {"text": "TEXT", "int": self.integer, "real": self.real}[kind]

    def one_of(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """A condition ``column`` equals one of ``values``, and its parameters."""
        if self.name == "postgresql":
            return f"{column} = ANY({_BINARY})", [list(values)]
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)

    def column_arrays(
        self, columns: Sequence[tuple[str, ColumnType]], rows: Sequence[Sequence[Any]]
    ) -> list[list[Any]]:
        """PostgreSQL: ``rows`` as one list per column, each of one element type."""
        by_column = zip(*rows, strict=True)
        return [_array(c, kind) for c, (_, kind) in zip(by_column, columns, strict=True)]

    def insert_statements(
        self,
        table: str,
        columns: Sequence[tuple[str, ColumnType]],
        rows: Sequence[Sequence[Any]],
        on_conflict: str,
    ) -> Iterator[tuple[str, list[Any]]]:
        """Statements inserting ``rows`` a few hundred at a time (SQLite: multi-row VALUES)
        or all at once (PostgreSQL: one array per column, sent in binary, ``unnest``ed)."""
        if not rows:
            return
        names = ", ".join(name for name, _ in columns)
        head = f"INSERT INTO {table} ({names})"
        if self.name == "postgresql":
            arrays = ", ".join(f"{_BINARY}::{self.column_type(kind)}[]" for _, kind in columns)
            yield (
                f"{head} SELECT * FROM unnest({arrays}) {on_conflict}",  # noqa: S608
                self.column_arrays(columns, rows),
            )
            return
        width = len(columns)
        per_statement = max(1, min(500, _SQLITE_MAX_PARAMETERS // width))
        one_row = f"({', '.join('?' * width)})"
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            values = ", ".join([one_row] * len(chunk))
            yield f"{head} VALUES {values} {on_conflict}", [v for row in chunk for v in row]


def _array(values: Sequence[Any], kind: ColumnType) -> list[Any]:
    """A column's values as one PostgreSQL array parameter. A binary array holds one
    element type, so whole numbers in a ``real`` column go as floats (as SQLite stores
    them); one beyond 64 bits is left for the storable-value check to refuse."""
    if kind != "real":
        return list(values)
    return [float(v) if type(v) is int and _INT64_MIN <= v <= _INT64_MAX else v for v in values]


SQLITE = Dialect(name="sqlite", integer="INTEGER", real="REAL", greatest="max")
POSTGRESQL = Dialect(
    name="postgresql", integer="BIGINT", real="DOUBLE PRECISION", greatest="GREATEST"
)
