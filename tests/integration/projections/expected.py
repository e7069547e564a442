"""The funnel, KPIs and stalled list computed independently, straight from the command
list and the documented definitions (no projector, no read model, no aggregate code)."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from domain import commands as c
from domain.stage_model import StageModel

MAIN_LINE = ["new", "mql", "sal", "sql", "converted"]
FUNNEL = [*MAIN_LINE, "won"]
SEGMENT_OF_EMPLOYEES: dict[object, str] = {
    8: "smb",
    30: "smb",
    "45": "smb",
    120: "mid_market",
    "400": "mid_market",
    "51-200": "mid_market",
    2500: "enterprise",
    "10k": "enterprise",
}


@dataclass
class Lead:
    source: str
    campaign: str | None
    cohort: str
    segment: str
    stage: str = "new"
    before_exit: str | None = None
    reached: set[str] = field(default_factory=set)
    visits: list[list[Any]] = field(default_factory=list)  # [stage, entered, exited, to]

    def enter(self, stage: str, at: datetime) -> None:
        if self.visits:
            self.visits[-1][2:] = [at, stage]
        self.visits.append([stage, at, None, None])
        self.reached.add(stage)
        self.stage = stage

    def pass_through(self, target: str) -> None:
        """Count the main-line stages strictly between here and ``target`` as reached."""
        here = MAIN_LINE.index(self.stage) if self.stage in MAIN_LINE else 0
        self.reached.update(MAIN_LINE[here + 1 : MAIN_LINE.index(target)])


@dataclass
class Deal:
    lead: str | None
    amount: Decimal
    opened: datetime
    stage: str = "qualification"
    status: str = "open"
    closed: datetime | None = None
    closed_from: str | None = None
    last_activity: datetime | None = None


def simulate(
    commands: list[c.Command], at: datetime | None = None
) -> tuple[dict[str, Lead], dict[str, Deal]]:
    leads: dict[str, Lead] = {}
    deals: dict[str, Deal] = {}
    for cmd in commands:
        if at is not None and cmd.occurred_at > at:
            continue
        t = cmd.occurred_at
        if isinstance(cmd, c.CaptureLead):
            lead = Lead(
                source=cmd.source,
                campaign=cmd.campaign,
                cohort=f"{t.year:04d}-{t.month:02d}",
                segment=SEGMENT_OF_EMPLOYEES.get(cmd.attributes.get("employees"), "unknown"),
            )
            lead.enter("new", t)
            leads[cmd.lead] = lead
        elif isinstance(cmd, c.MarkMql):
            leads[cmd.lead].enter("mql", t)
        elif isinstance(cmd, c.AcceptLead):
            leads[cmd.lead].enter("sal", t)
        elif isinstance(cmd, c.RejectLead | c.RecycleLead):
            leads[cmd.lead].enter("recycled", t)
        elif isinstance(cmd, c.QualifyLead):
            leads[cmd.lead].enter("sql", t)
        elif isinstance(cmd, c.DisqualifyLead):
            leads[cmd.lead].before_exit = leads[cmd.lead].stage
            leads[cmd.lead].enter("disqualified", t)
        elif isinstance(cmd, c.ReopenLead):
            leads[cmd.lead].enter(leads[cmd.lead].before_exit or "new", t)
        elif isinstance(cmd, c.FastTrack):
            leads[cmd.lead].pass_through(cmd.to_stage)
            leads[cmd.lead].enter(cmd.to_stage, t)
        elif isinstance(cmd, c.OpenDeal):
            if cmd.lead is not None and leads[cmd.lead].stage != "converted":
                leads[cmd.lead].pass_through("converted")
                leads[cmd.lead].enter("converted", t)
            deals[cmd.deal] = Deal(lead=cmd.lead, amount=cmd.amount, opened=t, last_activity=t)
        elif isinstance(cmd, c.DealCommand):
            _deal_command(deals[cmd.deal], cmd)
    return leads, deals


def _deal_command(deal: Deal, cmd: c.DealCommand) -> None:
    t = cmd.occurred_at
    deal.last_activity = t
    if (isinstance(cmd, c.MoveDeal) and cmd.stage == "closed_won") or isinstance(cmd, c.WinDeal):
        amount = cmd.amount if isinstance(cmd, c.WinDeal) else None
        deal.amount = amount if amount is not None else deal.amount
        deal.closed_from, deal.stage, deal.status, deal.closed = deal.stage, "closed_won", "won", t
    elif isinstance(cmd, c.MoveDeal):
        deal.stage = cmd.stage
    elif isinstance(cmd, c.LoseDeal):
        deal.closed_from, deal.stage, deal.status, deal.closed = (
            deal.stage,
            "closed_lost",
            "lost",
            t,
        )
    elif isinstance(cmd, c.ReopenDeal):
        deal.stage, deal.status, deal.closed = cmd.stage or deal.closed_from or "", "open", None
    elif isinstance(cmd, c.UpdateDeal) and cmd.amount is not None:
        deal.amount = cmd.amount


def _days(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds(), 0.0) / 86_400


def _p90(values: list[float]) -> float | None:
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def expected_funnel(
    leads: dict[str, Lead], deals: dict[str, Deal], **filters: str
) -> dict[str, Any]:
    chosen = {
        ref: lead
        for ref, lead in leads.items()
        if all(getattr(lead, name) == value for name, value in filters.items())
    }
    reached = Counter(stage for lead in chosen.values() for stage in lead.reached)
    current = Counter(lead.stage for lead in chosen.values())
    won_leads = {d.lead for d in deals.values() if d.status == "won" and d.lead in chosen}
    reached["won"] = current["won"] = len(won_leads)
    stages = []
    for index, stage in enumerate(FUNNEL):
        days = [
            _days(v[1], v[2])
            for lead in chosen.values()
            for v in lead.visits
            if v[0] == stage and v[2]
        ]
        exits = {
            to: len(
                {
                    ref
                    for ref, lead in chosen.items()
                    for v in lead.visits
                    if v[0] == stage and v[3] == to
                }
            )
            for to in ("recycled", "disqualified")
        }
        previous = reached[FUNNEL[index - 1]] if index else None
        stages.append(
            {
                "stage": stage,
                "reached": reached[stage],
                "current": current[stage],
                "conversion_from_previous": reached[stage] / previous if previous else None,
                "cumulative_conversion": reached[stage] / reached["new"]
                if reached["new"]
                else None,
                "median_days_in_stage": statistics.median(days) if days else None,
                "p90_days_in_stage": _p90(days),
                "exited_to_recycled": exits["recycled"],
                "exited_to_disqualified": exits["disqualified"],
            }
        )
    counted = [d for d in deals.values() if not filters or d.lead in chosen]
    statuses = Counter(d.status for d in counted)
    return {
        "stages": stages,
        "exits": {"recycled": current["recycled"], "disqualified": current["disqualified"]},
        "deals": {
            "opened": len(counted),
            "open": statuses["open"],
            "won": statuses["won"],
            "lost": statuses["lost"],
        },
    }


def expected_kpis(deals: dict[str, Deal], model: StageModel) -> dict[str, Any]:
    probability = {s.name: s.probability for s in model.pipeline("default").stages}
    won = [d for d in deals.values() if d.status == "won"]
    lost = [d for d in deals.values() if d.status == "lost"]
    open_deals = [d for d in deals.values() if d.status == "open"]
    avg_size = float(sum(d.amount for d in won) / len(won)) if won else None
    win_rate = len(won) / (len(won) + len(lost)) if won or lost else None
    cycle = statistics.fmean(_days(d.opened, d.closed) for d in won if d.closed) if won else None
    velocity = (
        len(open_deals) * avg_size * win_rate / cycle
        if avg_size is not None and win_rate is not None and cycle
        else None
    )
    by_stage = {
        stage: {
            "count": sum(1 for d in deals.values() if d.stage == stage),
            "value": float(sum(d.amount for d in deals.values() if d.stage == stage)),
        }
        for stage in probability
    }
    return {
        "open_deals": len(open_deals),
        "won_deals": len(won),
        "lost_deals": len(lost),
        "avg_deal_size": avg_size,
        "win_rate": win_rate,
        "avg_sales_cycle_days": cycle,
        "sales_velocity_per_day": velocity,
        "weighted_pipeline": float(
            sum(d.amount * Decimal(str(probability[d.stage])) for d in open_deals)
        ),
        "by_stage": by_stage,
    }


def expected_stalled(
    leads: dict[str, Lead], deals: dict[str, Deal], model: StageModel, now: datetime
) -> tuple[set[str], set[str]]:
    sla = timedelta(hours=model.mql_acceptance_sla_hours)
    stall_days = {s.name: s.stall_after_days for s in model.pipeline("default").open_stages}
    stalled_leads = {
        ref for ref, lead in leads.items() if lead.stage == "mql" and lead.visits[-1][1] < now - sla
    }
    stalled_deals = {
        ref
        for ref, d in deals.items()
        if d.status == "open"
        and d.last_activity is not None
        and d.last_activity < now - timedelta(days=stall_days[d.stage] or 0)
    }
    return stalled_leads, stalled_deals
