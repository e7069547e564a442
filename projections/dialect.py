"""The little that differs between SQLite and PostgreSQL for the read-model SQL.

Statements are written once, with ``?`` placeholders and ``ON CONFLICT ... DO UPDATE``
(both databases accept that upsert syntax); ``Dialect.sql`` adapts the placeholders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ColumnType = Literal["text", "int", "real"]


@dataclass(frozen=True, slots=True)
class Dialect:
    name: Literal["sqlite", "postgresql"]
    integer: str
    real: str
    greatest: str

    def sql(self, statement: str) -> str:
        """The statement with this dialect's placeholders (the SQL never contains a literal ?)."""
        return statement if self.name == "sqlite" else statement.replace("?", "%s")

    def column_type(self, kind: ColumnType) -> str:
        return {"text": "TEXT", "int": self.integer, "real": self.real}[kind]


SQLITE = Dialect(name="sqlite", integer="INTEGER", real="REAL", greatest="max")
POSTGRESQL = Dialect(
    name="postgresql", integer="BIGINT", real="DOUBLE PRECISION", greatest="GREATEST"
)
