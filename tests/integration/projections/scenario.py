"""A small deterministic generator of lead and deal commands for projection tests.

Each lead follows one of a fixed set of paths (captured only, MQL, rejected and
re-qualified, accepted, BANT-qualified, fast-tracked, recycled, disqualified and
reopened, converted into one or two deals), with engagement and contacts in between.
Each deal then moves, wins, loses or is reopened. Every aggregate's commands are strictly
increasing in business time; the list is sorted by business time.

Engagement is kept to low-value kinds, so no lead ever reaches the MQL threshold by
score: every stage change is one the commands ask for.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain import commands as c
from domain.events import Bant

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CAPTURE_DAYS = 100
SOURCES: dict[str, tuple[str | None, ...]] = {
    "web": ("spring_webinar", "seo"),
    "paid_search": ("brand", "competitor"),
    "events": ("saastr",),
    "referral": (None,),
}
EMPLOYEES: tuple[object, ...] = (8, 30, "45", 120, "400", "51-200", 2500, "10k", None)
LOW_VALUE_KINDS = ("page_view", "email_open", "email_click")
BANT = Bant(budget="40k EUR", authority="VP Sales", need="forecasting", timeline="Q3")

LEAD_PATHS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (20, ()),
    (10, ("mql",)),
    (6, ("mql", "reject")),
    (6, ("mql", "reject", "mql", "accept", "qualify", "deal")),
    (8, ("mql", "accept")),
    (8, ("mql", "accept", "qualify")),
    (14, ("mql", "accept", "qualify", "deal")),
    (4, ("mql", "accept", "qualify", "deal", "deal")),
    (4, ("mql", "accept", "recycle")),
    (3, ("mql", "accept", "qualify", "recycle", "mql")),
    (4, ("disqualify",)),
    (3, ("mql", "disqualify", "reopen")),
    (3, ("mql", "accept", "disqualify", "reopen", "qualify", "deal")),
    (4, ("ft_sql", "deal")),
    (3, ("ft_sal",)),
    (3, ("mql", "deal_ft")),
    (2, ("deal_ft",)),
    (3, ("mql", "reject", "ft_sql")),
)
DEAL_PATHS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (12, ()),
    (10, ("needs_analysis",)),
    (8, ("needs_analysis", "proposal_sent", "won")),
    (6, ("needs_analysis", "proposal_sent", "negotiation", "won_amount")),
    (8, ("lost",)),
    (5, ("proposal_sent", "needs_analysis")),
    (5, ("needs_analysis", "proposal_sent")),
    (4, ("proposal_sent", "negotiation")),
    (4, ("proposal_sent", "won", "reopen", "lost")),
    (4, ("amount", "negotiation", "closed_won")),
    (4, ("lost", "reopen")),
    (3, ("needs_analysis", "lost", "reopen", "won")),
)
DEAL_STAGES = ("qualification", "needs_analysis", "proposal_sent", "negotiation")


def _pick(rng: random.Random, weighted: tuple[tuple[int, tuple[str, ...]], ...]) -> tuple[str, ...]:
    return rng.choices([p for _, p in weighted], weights=[w for w, _ in weighted])[0]


class _Clock:
    def __init__(self, rng: random.Random, start: datetime) -> None:
        self.rng = rng
        self.now = start

    def step(self, max_days: float = 6.0) -> datetime:
        self.now += timedelta(hours=self.rng.uniform(1.0, max_days * 24))
        return self.now


def _amount(rng: random.Random) -> Decimal:
    return Decimal(rng.randrange(200_000, 12_000_000)) / 100


def generate_commands(seed: int = 7, leads: int = 300, direct_deals: int = 8) -> list[c.Command]:
    rng = random.Random(seed)
    commands: list[c.Command] = []
    deal_number = 0
    for number in range(leads):
        lead = f"lead-{number:04d}@example.com"
        source = rng.choice(sorted(SOURCES))
        captured = START + timedelta(days=rng.uniform(0, CAPTURE_DAYS))
        clock = _Clock(rng, captured)
        attributes: dict[str, object] = {"industry": "manufacturing"}
        employees = rng.choice(EMPLOYEES)
        if employees is not None:
            attributes["employees"] = employees
        commands.append(
            c.CaptureLead(
                lead=lead,
                source=source,
                campaign=rng.choice(SOURCES[source]),
                attributes=attributes,
                occurred_at=captured,
            )
        )
        for step in _pick(rng, LEAD_PATHS):
            commands += _noise(rng, lead, clock)
            at = clock.step()
            if step == "mql":
                commands.append(c.MarkMql(lead=lead, reason="campaign response", occurred_at=at))
            elif step == "accept":
                owner = rng.choice(("sam", "alex", "kim"))
                commands.append(c.AcceptLead(lead=lead, owner=owner, occurred_at=at))
            elif step == "reject":
                commands.append(c.RejectLead(lead=lead, reason="no budget", occurred_at=at))
            elif step == "qualify":
                commands.append(c.QualifyLead(lead=lead, bant=BANT, occurred_at=at))
            elif step == "recycle":
                commands.append(c.RecycleLead(lead=lead, reason="timing", occurred_at=at))
            elif step == "disqualify":
                commands.append(c.DisqualifyLead(lead=lead, reason="student", occurred_at=at))
            elif step == "reopen":
                commands.append(c.ReopenLead(lead=lead, reason="new role", occurred_at=at))
            elif step == "ft_sql":
                commands.append(
                    c.FastTrack(lead=lead, to_stage="sql", reason="demo request", occurred_at=at)
                )
            elif step == "ft_sal":
                commands.append(
                    c.FastTrack(lead=lead, to_stage="sal", reason="referral", occurred_at=at)
                )
            else:
                deal_number += 1
                deal = f"D-{deal_number:04d}"
                commands.append(
                    c.OpenDeal(
                        deal=deal,
                        lead=lead,
                        amount=_amount(rng),
                        fast_track=step == "deal_ft",
                        occurred_at=at,
                    )
                )
                commands += _deal_path(rng, deal, _Clock(rng, at))
    for _ in range(direct_deals):
        deal_number += 1
        deal = f"D-{deal_number:04d}"
        at = START + timedelta(days=rng.uniform(0, CAPTURE_DAYS))
        commands.append(c.OpenDeal(deal=deal, amount=_amount(rng), occurred_at=at))
        commands += _deal_path(rng, deal, _Clock(rng, at))
    commands.sort(key=lambda command: command.occurred_at)
    return commands


def _noise(rng: random.Random, lead: str, clock: _Clock) -> list[c.Command]:
    noise: list[c.Command] = []
    for _ in range(rng.choice((0, 0, 1, 2))):
        noise.append(
            c.RecordEngagement(
                lead=lead,
                event_id=f"{lead}-e{rng.getrandbits(40):x}",
                kind=rng.choice(LOW_VALUE_KINDS),
                occurred_at=clock.step(2.0),
            )
        )
    if rng.random() < 0.25:
        noise.append(c.LogContact(lead=lead, channel="call", occurred_at=clock.step(2.0)))
    return noise


def _deal_path(rng: random.Random, deal: str, clock: _Clock) -> list[c.Command]:
    commands: list[c.Command] = []
    for step in _pick(rng, DEAL_PATHS):
        at = clock.step(20.0)
        if step in DEAL_STAGES or step == "closed_won":
            commands.append(c.MoveDeal(deal=deal, stage=step, occurred_at=at))
        elif step == "won":
            commands.append(c.WinDeal(deal=deal, occurred_at=at))
        elif step == "won_amount":
            commands.append(c.WinDeal(deal=deal, amount=_amount(rng), occurred_at=at))
        elif step == "lost":
            commands.append(
                c.LoseDeal(deal=deal, reason="price", competitor="Acme CRM", occurred_at=at)
            )
        elif step == "reopen":
            commands.append(c.ReopenDeal(deal=deal, reason="came back", occurred_at=at))
        elif step == "amount":
            commands.append(c.UpdateDeal(deal=deal, amount=_amount(rng), occurred_at=at))
    return commands
