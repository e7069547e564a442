"""Funnel counts: how many leads reached each lifecycle stage, how many are in it, how
many left it for the side exits, conversion, and time in stage.

Definitions (filters restrict every figure to the leads that match them):
- ``reached``: leads that have ever been at or passed the stage, each counted once per
  stage. A fast-tracked lead (and a lead whose deal was opened with fast-track) counts as
  having passed the stages it skipped; a recycled lead that becomes an MQL again counts
  once. Every lead has reached ``new``.
- ``current``: leads whose stage is that stage now.
- ``won`` row: ``reached`` = ``current`` = leads with at least one deal whose status is
  won now (a won deal that was reopened no longer counts).
- ``conversion_from_previous`` = reached(stage) / reached(previous stage), null for ``new``
  and when the previous stage has no leads; ``cumulative_conversion`` = reached(stage) /
  reached(new), null when no lead matches.
- ``median_days_in_stage`` / ``p90_days_in_stage``: over completed visits to the stage
  (entered and left again; a stage skipped by fast-track is no visit), in days of business
  time (``occurred_at``), p90 by linear interpolation between the closest ranks. A visit
  left "before" it was entered (out-of-order business times) counts as 0 days. Null when
  the stage has no completed visit (always for ``converted`` and ``won``).
- ``exited_to_recycled`` / ``exited_to_disqualified``: leads that ever went straight from
  this stage to recycled / disqualified.
- ``exits``: leads whose stage is recycled / disqualified now.
- ``deals``: ``opened`` = every deal, ``open`` / ``won`` / ``lost`` by their status now.
  Without filters every deal counts; with filters only deals opened from matching leads.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from projections.segments import Segment
from projections.store import ReadModelStore, Tx, from_utc_text

FUNNEL_STAGES: tuple[str, ...] = ("new", "mql", "sal", "sql", "converted", "won")
_TIMED_STAGES = FUNNEL_STAGES[:-1]
_COHORT = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_DAY_SECONDS = 86_400.0


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FunnelFilters(_Model):
    cohort: str | None = Field(default=None, description="capture month, YYYY-MM (UTC)")
    source: str | None = None
    campaign: str | None = None
    segment: Segment | None = None

    @field_validator("cohort")
    @classmethod
    def _month(cls, value: str | None) -> str | None:
        if value is not None and not _COHORT.fullmatch(value):
            raise ValueError(f"cohort {value!r} is not a month in the form YYYY-MM")
        return value

    def conditions(self, alias: str = "l") -> tuple[list[str], list[Any]]:
        """SQL conditions on the ``rm_leads`` row aliased ``alias``, and their parameters."""
        pairs = [
            (f"{alias}.{column} = ?", value)
            for column, value in (
                ("cohort", self.cohort),
                ("source", self.source),
                ("campaign", self.campaign),
                ("segment", self.segment),
            )
            if value is not None
        ]
        return [c for c, _ in pairs], [v for _, v in pairs]

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.cohort, self.source, self.campaign, self.segment))


class FunnelStage(_Model):
    stage: str
    reached: int
    current: int
    conversion_from_previous: float | None
    cumulative_conversion: float | None
    median_days_in_stage: float | None
    p90_days_in_stage: float | None
    exited_to_recycled: int
    exited_to_disqualified: int


class FunnelExits(_Model):
    recycled: int
    disqualified: int


class FunnelDeals(_Model):
    opened: int
    open: int
    won: int
    lost: int


class FunnelReport(_Model):
    stages: list[FunnelStage]
    exits: FunnelExits
    deals: FunnelDeals


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _days(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _where(conditions: list[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def funnel_report(store: ReadModelStore, filters: FunnelFilters | None = None) -> FunnelReport:
    filters = filters or FunnelFilters()
    conditions, params = filters.conditions("l")
    with store.read() as tx:
        reached = _counts(
            tx,
            "SELECT r.stage, COUNT(*) FROM rm_lead_reached r "  # noqa: S608
            f"JOIN rm_leads l ON l.lead_id = r.lead_id{_where(conditions)} GROUP BY r.stage",
            params,
        )
        current = _counts(
            tx,
            f"SELECT l.stage, COUNT(*) FROM rm_leads l{_where(conditions)} GROUP BY l.stage",  # noqa: S608
            params,
        )
        durations = _visit_days(tx, conditions, params)
        exited = _exits_by_stage(tx, conditions, params)
        won_rows = tx.execute(
            "SELECT COUNT(DISTINCT d.lead_id) FROM rm_deals d "  # noqa: S608
            "JOIN rm_leads l ON l.lead_id = d.lead_id"
            f"{_where(['d.status = ?', *conditions])}",
            ["won", *params],
        )
        deals = _deal_counts(tx, filters, conditions, params)
    reached["won"] = current["won"] = int(won_rows[0][0])
    stages: list[FunnelStage] = []
    for index, stage in enumerate(FUNNEL_STAGES):
        previous = reached.get(FUNNEL_STAGES[index - 1], 0) if index else None
        days = durations.get(stage, [])
        stages.append(
            FunnelStage(
                stage=stage,
                reached=reached.get(stage, 0),
                current=current.get(stage, 0),
                conversion_from_previous=None
                if previous is None
                else _ratio(reached.get(stage, 0), previous),
                cumulative_conversion=_ratio(reached.get(stage, 0), reached.get("new", 0)),
                median_days_in_stage=_days(percentile(days, 0.5)),
                p90_days_in_stage=_days(percentile(days, 0.9)),
                exited_to_recycled=exited.get((stage, "recycled"), 0),
                exited_to_disqualified=exited.get((stage, "disqualified"), 0),
            )
        )
    return FunnelReport(
        stages=stages,
        exits=FunnelExits(
            recycled=current.get("recycled", 0), disqualified=current.get("disqualified", 0)
        ),
        deals=deals,
    )


def _counts(tx: Tx, statement: str, params: list[Any]) -> dict[str, int]:
    return {str(key): int(count) for key, count in tx.execute(statement, params)}


def _visit_days(tx: Tx, conditions: list[str], params: list[Any]) -> dict[str, list[float]]:
    marks = ", ".join("?" * len(_TIMED_STAGES))
    rows = tx.execute(
        "SELECT v.stage, v.entered_at, v.exited_at FROM rm_lead_visits v "  # noqa: S608
        "JOIN rm_leads l ON l.lead_id = v.lead_id"
        f"{_where([f'v.stage IN ({marks})', 'v.exited_at IS NOT NULL', *conditions])}",
        [*_TIMED_STAGES, *params],
    )
    days: dict[str, list[float]] = defaultdict(list)
    for stage, entered_at, exited_at in rows:
        seconds = (from_utc_text(exited_at) - from_utc_text(entered_at)).total_seconds()
        days[stage].append(max(seconds, 0.0) / _DAY_SECONDS)
    return days


def _exits_by_stage(tx: Tx, conditions: list[str], params: list[Any]) -> dict[tuple[str, str], int]:
    rows = tx.execute(
        "SELECT v.stage, v.exited_to, COUNT(DISTINCT v.lead_id) FROM rm_lead_visits v "  # noqa: S608
        "JOIN rm_leads l ON l.lead_id = v.lead_id"
        f"{_where(['v.exited_to IN (?, ?)', *conditions])} GROUP BY v.stage, v.exited_to",
        ["recycled", "disqualified", *params],
    )
    return {(str(stage), str(to)): int(count) for stage, to, count in rows}


def _deal_counts(
    tx: Tx, filters: FunnelFilters, conditions: list[str], params: list[Any]
) -> FunnelDeals:
    if filters.any:
        statement = (
            "SELECT d.status, COUNT(*) FROM rm_deals d JOIN rm_leads l ON l.lead_id = d.lead_id"  # noqa: S608
            f"{_where(conditions)} GROUP BY d.status"
        )
    else:
        statement = "SELECT d.status, COUNT(*) FROM rm_deals d GROUP BY d.status"
    by_status = _counts(tx, statement, params)
    return FunnelDeals(
        opened=sum(by_status.values()),
        open=by_status.get("open", 0),
        won=by_status.get("won", 0),
        lost=by_status.get("lost", 0),
    )
