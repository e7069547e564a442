"""Read-model tables: per-lead and per-deal facts, consumed positions, dead letters.

Times are ISO 8601 UTC text with microseconds (``2026-01-05T09:00:00.000000+00:00``), so
they sort and compare as text in both databases; money is integer minor units (cents).
Facts are derived per aggregate only, so they never depend on the order in which
different aggregates' events arrive; reports join leads and deals at query time.
"""

from __future__ import annotations

from dataclasses import dataclass

from projections.sql_dialect import ColumnType, Dialect

SCHEMA_VERSION = "2"  # 2: amount_minor in the currency's ISO 4217 minor unit


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[tuple[str, ColumnType], ...]
    key: tuple[str, ...]
    facts: bool = True
    """Fact tables are derived from events alone: `leadflow verify` compares them."""
    indexes: tuple[tuple[str, ...], ...] = ()
    versions: bool = False
    """Business-time versions: compared only when both read models keep them."""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def ddl(self, dialect: Dialect) -> list[str]:
        cols = [
            f"{name} {dialect.column_type(kind)}{' NOT NULL' if name in self.key else ''}"
            for name, kind in self.columns
        ]
        statements = [
            f"CREATE TABLE IF NOT EXISTS {self.name} "
            f"({', '.join(cols)}, PRIMARY KEY ({', '.join(self.key)}))"
        ]
        for columns in self.indexes:
            index = f"{self.name}_by_{'_'.join(columns)}"
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {index} ON {self.name} ({', '.join(columns)})"
            )
        return statements


META = Table("rm_meta", (("key", "text"), ("value", "text")), ("key",), facts=False)

POSITIONS = Table(
    "rm_positions",
    (("stream", "text"), ("part", "int"), ("next_position", "int"), ("updated_at", "text")),
    ("stream", "part"),
    facts=False,
)
"""Kafka: stream = topic, part = partition, next_position = next offset to consume.
Embedded: stream = ``EMBEDDED_STREAM``, part = 0, next_position = last notification id + 1."""

LEADS = Table(
    "rm_leads",
    (
        ("lead_id", "text"),
        ("external_id", "text"),
        ("version", "int"),
        ("source", "text"),
        ("campaign", "text"),
        ("employees", "real"),
        ("segment", "text"),
        ("cohort", "text"),
        ("captured_at", "text"),
        ("stage", "text"),
        ("entered_stage_at", "text"),
        ("owner", "text"),
        ("score", "real"),
        ("last_activity_at", "text"),
        ("visits", "int"),
        ("contacts", "int"),
        ("fast_tracks", "int"),
    ),
    ("lead_id",),
    indexes=(("stage",), ("cohort",), ("source", "campaign"), ("owner",)),
)

LEAD_REACHED = Table(
    "rm_lead_reached",
    (("lead_id", "text"), ("stage", "text"), ("reached_at", "text")),
    ("lead_id", "stage"),
    indexes=(("stage",), ("reached_at",)),
)

LEAD_VISITS = Table(
    "rm_lead_visits",
    (
        ("lead_id", "text"),
        ("seq", "int"),
        ("stage", "text"),
        ("entered_at", "text"),
        ("exited_at", "text"),
        ("exited_to", "text"),
    ),
    ("lead_id", "seq"),
    indexes=(("stage",), ("entered_at",)),
)

DEALS = Table(
    "rm_deals",
    (
        ("deal_id", "text"),
        ("external_id", "text"),
        ("version", "int"),
        ("lead_id", "text"),
        ("pipeline", "text"),
        ("stage", "text"),
        ("status", "text"),
        ("owner", "text"),
        ("amount_minor", "int"),
        ("currency", "text"),
        ("expected_close_date", "text"),
        ("opened_at", "text"),
        ("entered_stage_at", "text"),
        ("last_activity_at", "text"),
        ("closed_at", "text"),
        ("lost_reason", "text"),
        ("competitor", "text"),
    ),
    ("deal_id",),
    indexes=(("status", "pipeline", "stage"), ("lead_id",), ("owner",)),
)

DEAD_LETTERS = Table(
    "rm_dead_letters",
    (
        ("stream", "text"),
        ("part", "int"),
        ("record_position", "int"),
        ("aggregate_id", "text"),
        ("error", "text"),
        ("payload", "text"),
        ("recorded_at", "text"),
    ),
    ("stream", "part", "record_position"),
    facts=False,
)
"""Records the projector could not apply: kept here (and logged), never silently dropped."""

# --- business-time versions (as-of without replaying history) ---------------------------
# A version holds an aggregate's facts from ``valid_from`` (the business time of the events
# that made it) until ``valid_to`` (that of the next version; NULL: still valid). Kept only
# for aggregates whose events arrived in business-time order; the others are listed in
# ``rm_out_of_order`` and an as-of replays their events. No personal columns: an as-of
# takes the external id from ``rm_leads`` / ``rm_deals``, which erasure keeps right.
_VALIDITY: tuple[tuple[str, ColumnType], ...] = (("valid_from", "text"), ("valid_to", "text"))

LEAD_VERSIONS = Table(
    "rm_lead_versions",
    (
        ("lead_id", "text"),
        *_VALIDITY,
        *(c for c in LEADS.columns if c[0] not in ("lead_id", "external_id", "version")),
    ),
    ("valid_from", "lead_id"),  # led by the time: the index an as-of reads by
    versions=True,
)

DEAL_VERSIONS = Table(
    "rm_deal_versions",
    (
        ("deal_id", "text"),
        *_VALIDITY,
        *(
            c
            for c in DEALS.columns
            if c[0] not in ("deal_id", "external_id", "version", "lost_reason", "competitor")
        ),
    ),
    ("valid_from", "deal_id"),
    versions=True,
)

OUT_OF_ORDER = Table(
    "rm_out_of_order",
    (("aggregate_id", "text"), ("kind", "text")),
    ("aggregate_id",),
    versions=True,
)
"""Aggregates with an event that occurred before one applied earlier: no versions."""

VERSIONS_META_KEY = "business_versions"
"""In ``rm_meta`` (value "1") when the versions were kept since the read model was created;
a read model created by an older leadflow has the tables empty until ``leadflow rebuild``."""

TABLES: tuple[Table, ...] = (
    META,
    POSITIONS,
    LEADS,
    LEAD_REACHED,
    LEAD_VISITS,
    DEALS,
    DEAD_LETTERS,
    LEAD_VERSIONS,
    DEAL_VERSIONS,
    OUT_OF_ORDER,
)
FACT_TABLES: tuple[Table, ...] = tuple(t for t in TABLES if t.facts)
