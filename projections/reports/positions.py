"""Pipeline positions (one row per lead and per deal) and the stalled list.

Stalled, relative to ``now``:
- a lead that is an MQL and has not been accepted or rejected within the stage model's
  ``mql_acceptance_sla_hours`` of becoming one;
- an open deal whose last activity (any event of the deal) is longer ago than its stage's
  ``stall_after_days``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict

from domain.stage_model import StageModel
from projections.reports.kpis import stage_probability
from projections.store import ReadModelStore, from_utc_text, utc_text

log = structlog.get_logger("leadflow.projections.board")

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


class StalledLead(_Model):
    lead_id: str
    external_id: str
    source: str
    campaign: str | None
    score: float
    mql_since: datetime
    hours_waiting: float
    sla_hours: float


class StalledDeal(_Model):
    deal_id: str
    external_id: str
    pipeline: str
    stage: str
    owner: str | None
    amount: float
    currency: str
    last_activity_at: datetime
    days_idle: float
    stall_after_days: int


class StalledReport(_Model):
    as_of: datetime
    leads: list[StalledLead]
    deals: list[StalledDeal]


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _stall_conditions(model: StageModel, now: datetime) -> tuple[str, list[Any]]:
    """SQL matching open deals idle longer than their stage allows (``FALSE`` when none)."""
    clauses: list[str] = []
    params: list[Any] = []
    for name, pipeline in model.pipelines.items():
        for stage in pipeline.open_stages:
            if stage.stall_after_days is None:
                continue
            clauses.append("(pipeline = ? AND stage = ? AND last_activity_at < ?)")
            params += [name, stage.name, utc_text(now - timedelta(days=stage.stall_after_days))]
    return (f"({' OR '.join(clauses)})" if clauses else "1 = 0"), params


def _mql_cutoff(model: StageModel, now: datetime) -> str:
    return utc_text(now - timedelta(hours=model.mql_acceptance_sla_hours))


def stalled_report(store: ReadModelStore, now: datetime | None = None) -> StalledReport:
    now = _aware(now)
    model = store.stage_model
    stall, stall_params = _stall_conditions(model, now)
    with store.read() as tx:
        leads = tx.execute(
            "SELECT lead_id, external_id, source, campaign, score, entered_stage_at FROM rm_leads "
            "WHERE stage = ? AND entered_stage_at < ? ORDER BY entered_stage_at, lead_id",
            ("mql", _mql_cutoff(model, now)),
        )
        deals = tx.execute(
            "SELECT deal_id, external_id, pipeline, stage, owner, amount_minor, currency, "  # noqa: S608
            f"last_activity_at FROM rm_deals WHERE status = ? AND {stall} "
            "ORDER BY last_activity_at, deal_id",
            ("open", *stall_params),
        )
    return StalledReport(
        as_of=now,
        leads=[
            StalledLead(
                lead_id=lead_id,
                external_id=external_id,
                source=source,
                campaign=campaign,
                score=score,
                mql_since=from_utc_text(since),
                hours_waiting=round((now - from_utc_text(since)).total_seconds() / 3600, 1),
                sla_hours=model.mql_acceptance_sla_hours,
            )
            for lead_id, external_id, source, campaign, score, since in leads
        ],
        deals=[
            StalledDeal(
                deal_id=deal_id,
                external_id=external_id,
                pipeline=pipeline,
                stage=stage,
                owner=owner,
                amount=amount / 100,
                currency=currency,
                last_activity_at=from_utc_text(last),
                days_idle=round((now - from_utc_text(last)).total_seconds() / 86_400, 1),
                stall_after_days=model.pipeline(pipeline).stage(stage).stall_after_days or 0,
            )
            for deal_id, external_id, pipeline, stage, owner, amount, currency, last in deals
        ],
    )


def pipeline_positions(
    store: ReadModelStore,
    kind: Kind | None = None,
    stage: str | None = None,
    owner: str | None = None,
    limit: int = 100,
    now: datetime | None = None,
) -> list[Position]:
    """Leads and deals where they stand, longest in their stage first, at most ``limit``."""
    now = _aware(now)
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
            cutoff = _mql_cutoff(model, now)
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
        amount=amount / 100,
        currency=currency,
        weighted_amount=None if probability is None else round(amount * probability / 100, 2),
        entered_stage_at=entered,
        last_activity_at=last,
        stalled=stalled,
        lead_id=lead_id,
        source=None,
        campaign=None,
        segment=None,
    )
