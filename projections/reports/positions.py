"""Pipeline positions: one row per lead and per deal, where it stands now, and whether it is
stalled (by the rule in ``stalled``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from domain.stage_model import StageModel
from projections.money import major
from projections.reports.kpis import stage_probability
from projections.reports.stalled import aware_now, mql_cutoff
from projections.store import ReadModelStore, from_utc_text

Kind = Literal["lead", "deal"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Position(_Model):
    kind: Kind
    id: str
    external_id: str
    stage: str
    funnel_stage: str | None
    owner: str | None
    score: float | None
    pipeline: str | None
    status: str | None
    amount: float | None
    currency: str | None
    weighted_amount: float | None
    entered_stage_at: datetime
    last_activity_at: datetime
    stalled: bool
    lead_id: str | None
    source: str | None
    campaign: str | None
    segment: str | None


def pipeline_positions(
    store: ReadModelStore,
    kind: Kind | None = None,
    stage: str | None = None,
    owner: str | None = None,
    limit: int = 100,
    now: datetime | None = None,
) -> list[Position]:
    """Leads and deals where they stand, longest in their stage first, at most ``limit``."""
    now = aware_now(now)
    model = store.stage_model
    filters = [(c, v) for c, v in (("stage = ?", stage), ("owner = ?", owner)) if v is not None]
    where = f" WHERE {' AND '.join(c for c, _ in filters)}" if filters else ""
    params = [v for _, v in filters]
    positions: list[Position] = []
    with store.read() as tx:
        if kind in (None, "lead"):
            rows = tx.execute(
                "SELECT lead_id, external_id, stage, owner, score, entered_stage_at, "  # noqa: S608
                f"last_activity_at, source, campaign, segment FROM rm_leads{where} "
                "ORDER BY entered_stage_at, lead_id LIMIT ?",
                [*params, limit],
            )
            cutoff = mql_cutoff(model, now)
            positions += [_lead_position(model, row, cutoff) for row in rows]
        if kind in (None, "deal"):
            rows = tx.execute(
                "SELECT deal_id, external_id, lead_id, pipeline, stage, status, owner, "  # noqa: S608
                f"amount_minor, currency, entered_stage_at, last_activity_at FROM rm_deals{where} "
                "ORDER BY entered_stage_at, deal_id LIMIT ?",
                [*params, limit],
            )
            positions += [_deal_position(model, row, now) for row in rows]
    positions.sort(key=lambda p: (p.entered_stage_at, p.kind, p.id))
    return positions[:limit]


def _lead_position(model: StageModel, row: tuple[Any, ...], mql_cutoff: str) -> Position:
    lead_id, external_id, stage, owner, score, entered, last, source, campaign, segment = row
    try:
        funnel: str | None = model.funnel_stage_of_lifecycle(stage)
    except KeyError:
        funnel = None
    return Position(
        kind="lead",
        id=lead_id,
        external_id=external_id,
        stage=stage,
        funnel_stage=funnel,
        owner=owner,
        score=score,
        pipeline=None,
        status=None,
        amount=None,
        currency=None,
        weighted_amount=None,
        entered_stage_at=from_utc_text(entered),
        last_activity_at=from_utc_text(last),
        stalled=stage == "mql" and entered < mql_cutoff,
        lead_id=lead_id,
        source=source,
        campaign=campaign,
        segment=segment,
    )


def _deal_position(model: StageModel, row: tuple[Any, ...], now: datetime) -> Position:
    deal_id, external_id, lead_id, pipeline, stage, status, owner, amount, currency = row[:9]
    entered, last = from_utc_text(row[9]), from_utc_text(row[10])
    probability = stage_probability(model, pipeline, stage)
    funnel: str | None = None
    stalled = False
    if probability is not None:
        definition = model.pipeline(pipeline).stage(stage)
        funnel = definition.funnel
        stalled = (
            status == "open"
            and definition.stall_after_days is not None
            and now - last > timedelta(days=definition.stall_after_days)
        )
    return Position(
        kind="deal",
        id=deal_id,
        external_id=external_id,
        stage=stage,
        funnel_stage=funnel,
        owner=owner,
        score=None,
        pipeline=pipeline,
        status=status,
        amount=major(amount, currency),
        currency=currency,
        weighted_amount=None
        if probability is None
        else round(major(amount, currency) * probability, 2),
        entered_stage_at=entered,
        last_activity_at=last,
        stalled=stalled,
        lead_id=lead_id,
        source=None,
        campaign=None,
        segment=None,
    )
