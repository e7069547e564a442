"""Pipeline health over deals, by their status and stage now.

Definitions:
- ``open_deals`` / ``won_deals`` / ``lost_deals``: deals whose status is open / won / lost.
- ``avg_deal_size``: mean amount of won deals (null when none is won).
- ``win_rate`` = won / (won + lost) (null when no deal is closed).
- ``avg_sales_cycle_days``: mean days from the deal's opening to its win, over won deals,
  in business time (``occurred_at``); null when none is won. A deal won "before" it was
  opened (a store written before business time was kept in order) counts as 0 days, so
  neither the cycle nor the velocity is ever negative.
- ``sales_velocity_per_day`` = open_deals x avg_deal_size x win_rate / avg_sales_cycle_days
  (null when any factor is null or the cycle is 0 days).
- ``weighted_pipeline``: sum over open deals of amount x their stage's probability in the
  stage model (0 when there is no open deal).
- ``by_stage``: every stage of every pipeline in the stage model, in order, with the count
  and summed amount of the deals in it now and that value x the stage's probability. Deals
  in a stage the stage model no longer has get their own row with a null weighted value
  and are left out of ``weighted_pipeline``.
Amounts are summed as recorded, without currency conversion (``currencies`` lists them);
each is read in its currency's minor unit (see ``projections.money``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import structlog
from pydantic import BaseModel, ConfigDict

from domain.stage_model import StageModel
from projections.money import major_sum
from projections.store import ReadModelStore, from_utc_text

log = structlog.get_logger("leadflow.projections.kpis")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StageValue(_Model):
    pipeline: str
    stage: str
    count: int
    value: float
    weighted_value: float | None


class KpiReport(_Model):
    open_deals: int
    won_deals: int
    lost_deals: int
    avg_deal_size: float | None
    win_rate: float | None
    avg_sales_cycle_days: float | None
    sales_velocity_per_day: float | None
    weighted_pipeline: float
    by_stage: list[StageValue]
    currencies: list[str]


def stage_probability(model: StageModel, pipeline: str, stage: str) -> float | None:
    """The stage's win probability, None when the stage model has no such stage."""
    try:
        return model.pipeline(pipeline).stage(stage).probability
    except KeyError:
        return None


def cycle_days(opened_at: str, closed_at: str) -> float:
    """Days from opening to closing in business time, never below 0."""
    return max((from_utc_text(closed_at) - from_utc_text(opened_at)).total_seconds(), 0.0) / 86_400


@dataclass(slots=True)
class _StageSums:
    count: int = 0
    minor: dict[str, int] = field(default_factory=dict)

    def add(self, currency: str, amount: int) -> None:
        self.count += 1
        self.minor[currency] = self.minor.get(currency, 0) + amount


def _model_stages(model: StageModel) -> Iterator[tuple[str, str]]:
    for name, pipeline in model.pipelines.items():
        for stage in pipeline.stages:
            yield name, stage.name


def kpi_report(store: ReadModelStore) -> KpiReport:
    model = store.stage_model
    with store.read() as tx:
        by_status = {
            str(status): int(count)
            for status, count in tx.execute("SELECT status, COUNT(*) FROM rm_deals GROUP BY status")
        }
        won_rows = tx.execute(
            "SELECT amount_minor, currency, opened_at, closed_at FROM rm_deals WHERE status = ? "
            "ORDER BY deal_id",  # floats summed in one order: the same figures from any store
            ("won",),
        )
        # Summed here, not with SQL SUM: SQLite's integer SUM stops at 2**63.
        deal_rows = tx.execute(
            "SELECT pipeline, stage, status, currency, amount_minor FROM rm_deals"
        )
        currencies = sorted(str(c) for (c,) in tx.execute("SELECT DISTINCT currency FROM rm_deals"))
    open_deals, won, lost = (by_status.get(s, 0) for s in ("open", "won", "lost"))
    won_minor: dict[str, int] = {}
    for amount, currency, _, _ in won_rows:
        won_minor[currency] = won_minor.get(currency, 0) + int(amount)
    avg_size = major_sum(won_minor) / won if won else None
    win_rate = won / (won + lost) if won + lost else None
    cycle = (
        sum(cycle_days(opened, closed) for _, _, opened, closed in won_rows) / won if won else None
    )
    velocity = (
        open_deals * avg_size * win_rate / cycle
        if avg_size is not None and win_rate is not None and cycle
        else None
    )
    counts: dict[tuple[str, str], _StageSums] = {key: _StageSums() for key in _model_stages(model)}
    unknown: dict[tuple[str, str], int] = {}
    open_minor: dict[tuple[str, str], dict[str, int]] = {}
    for pipeline, stage, status, currency, amount in deal_rows:
        key = (str(pipeline), str(stage))
        sums = counts.setdefault(key, _StageSums())
        sums.add(str(currency), int(amount))
        if status == "open":
            by_currency = open_minor.setdefault(key, {})
            by_currency[currency] = by_currency.get(currency, 0) + int(amount)
        if stage_probability(model, *key) is None:
            unknown[key] = unknown.get(key, 0) + 1
    for (pipeline, stage), deals in unknown.items():
        log.warning("deals_in_unknown_stage", pipeline=pipeline, stage=stage, deals=deals)
    weighted = 0.0
    for key, by_currency in sorted(open_minor.items()):
        probability = stage_probability(model, *key)
        if probability is not None:
            weighted += major_sum(by_currency) * probability
    by_stage = []
    for (pipeline, stage), sums in counts.items():
        probability = stage_probability(model, pipeline, stage)
        value = major_sum(sums.minor)
        by_stage.append(
            StageValue(
                pipeline=pipeline,
                stage=stage,
                count=sums.count,
                value=value,
                weighted_value=None if probability is None else round(value * probability, 2),
            )
        )
    return KpiReport(
        open_deals=open_deals,
        won_deals=won,
        lost_deals=lost,
        avg_deal_size=None if avg_size is None else round(avg_size, 2),
        win_rate=None if win_rate is None else round(win_rate, 4),
        avg_sales_cycle_days=None if cycle is None else round(cycle, 2),
        sales_velocity_per_day=None if velocity is None else round(velocity, 2),
        weighted_pipeline=round(weighted, 2),
        by_stage=by_stage,
        currencies=currencies,
    )
