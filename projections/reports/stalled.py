"""The stalled list, relative to ``now``:
- a lead that is an MQL and has not been accepted or rejected within the stage model's
  ``mql_acceptance_sla_hours`` of becoming one;
- an open deal whose last activity (any event of the deal) is longer ago than its stage's
  ``stall_after_days``.
Waiting hours and idle days are never negative.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from domain.stage_model import StageModel
from projections.money import major
from projections.store import ReadModelStore, from_utc_text, utc_text


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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


def aware_now(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def stall_conditions(model: StageModel, now: datetime) -> tuple[str, list[Any]]:
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


def mql_cutoff(model: StageModel, now: datetime) -> str:
    return utc_text(now - timedelta(hours=model.mql_acceptance_sla_hours))


def _seconds_since(moment: str, now: datetime) -> float:
    return max((now - from_utc_text(moment)).total_seconds(), 0.0)


def stalled_report(store: ReadModelStore, now: datetime | None = None) -> StalledReport:
    now = aware_now(now)
    model = store.stage_model
    stall, stall_params = stall_conditions(model, now)
    with store.read() as tx:
        leads = tx.execute(
            "SELECT lead_id, external_id, source, campaign, score, entered_stage_at FROM rm_leads "
            "WHERE stage = ? AND entered_stage_at < ? ORDER BY entered_stage_at, lead_id",
            ("mql", mql_cutoff(model, now)),
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
                hours_waiting=round(_seconds_since(since, now) / 3600, 1),
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
                amount=major(amount, currency),
                currency=currency,
                last_activity_at=from_utc_text(last),
                days_idle=round(_seconds_since(last, now) / 86_400, 1),
                stall_after_days=model.pipeline(pipeline).stage(stage).stall_after_days or 0,
            )
            for deal_id, external_id, pipeline, stage, owner, amount, currency, last in deals
        ],
    )
