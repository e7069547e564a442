"""A seeded, realistic B2B quarter: the commands a marketing and sales team would send.

``generate_quarter(seed, leads)`` is deterministic: every lead's journey draws from its own
``random.Random`` seeded with (seed, lead number), time is business time counted from
``QUARTER_START``, and ids are derived from the seed (no wall clock, no random UUIDs). A
quarter of N leads is therefore the first N leads of any bigger quarter with the same seed.

Each journey is simulated on its own: the lead is captured from a source with firmographics
that fit the ideal customer profile more or less well, engages, and the real scoring rules
decide when it becomes an MQL. SDRs contact MQLs and accept or reject them (a few are left
untouched past the SLA), account executives run discovery, record BANT and open deals that
move through the pipeline (sometimes backwards) to a win or a loss, and a few lost deals are
reopened. Perfect-fit accounts that request a demo are fast-tracked to SQL; leads are
recycled, disqualified and reopened. The simulation tracks stage and score exactly as the
domain does, so every command is legal when applied in the returned (business-time) order.
Nothing happens at or after ``QUARTER_END``.

The first leads follow scripted showcase journeys, so even a small quarter contains every
kind of thing.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain import commands as c
from domain.scoring import Engagement, ScoringRules, load_scoring_rules, score_lead
from domain.stage_model import Pipeline, StageModel, load_stage_model
from leadflow.demo import catalog as cat
from leadflow.demo.deals import DealJourney
from leadflow.demo.showcases import SHOWCASES, Showcase
from leadflow.demo.timeline import QUARTER_DAYS, QUARTER_START

DEFAULT_SEED = 42
DEFAULT_LEADS = 3000

_NURTURING = ("new", "recycled")
_POSITION = {"new": 0, "recycled": 0, "mql": 1, "sal": 2, "sql": 3, "converted": 4}


@dataclass(frozen=True, slots=True)
class _Quarter:
    seed: int
    rules: ScoringRules
    pipeline: Pipeline
    sla_hours: float
    sources: Mapping[str, cat.Source]

    @property
    def perfect_fit(self) -> float:
        """The fit of an account that matches every fit rule."""
        return round(sum(max(rule.points, 0.0) for rule in self.rules.fit_rules), 2)


class _Journey(DealJourney):
    """One lead from capture to wherever the quarter leaves it."""

    def __init__(
        self, quarter: _Quarter, number: int, contact: tuple[str, str], showcase: Showcase | None
    ) -> None:
        email, company = contact
        super().__init__(
            rng=random.Random(f"leadflow-demo:{quarter.seed}:{number}"),
            prefix=f"demo-{quarter.seed}-L{number:05d}",
            email=email,
            script=showcase.decisions if showcase else {},
            pipeline=quarter.pipeline,
            deal_ref=f"DEAL-{number:05d}",
        )
        self.q = quarter
        self.stage = "new"
        self.stage_before_exit: str | None = None
        self.score = 0.0
        self.rule_version: str | None = None
        self.engagements: list[Engagement] = []
        self.unsubscribed = False
        self.mql_cycles = 0
        self.owner = self.rng.choice(cat.SDRS)

        source_name = showcase.source if showcase else self._weighted_source()
        self.source = quarter.sources[source_name]
        self.campaign = self.rng.choice(self.source.campaigns)
        tiers = dict(zip(cat.FIT_TIERS, self.source.fit_tiers, strict=True))
        self.fit_tier = self._choose("fit_tier", list(tiers.items()))
        self.attributes = self._firmographics(company, cat.FIT_TIER_MATCH[self.fit_tier])
        intents = zip(("cold", "warm", "hot"), self.source.intents, strict=True)
        self.intent = self._choose("intent", list(intents))
        self.fit = score_lead(quarter.rules, self.attributes, (), QUARTER_START).fit
        captured = self._capture_time(early=showcase is not None)
        self._at(captured, self._capture)
        for hours, kind in showcase.engagements if showcase else ():
            self._at(captured + timedelta(hours=hours), self._engagement(kind))

    # --- the lead's profile -------------------------------------------------------------

    def _weighted_source(self) -> str:
        names = list(self.q.sources)
        weights = [s.weight for s in self.q.sources.values()]
        return self.rng.choices(names, weights=weights)[0]

    def _firmographics(self, company: str, match: float) -> dict[str, Any]:
        rng = self.rng

        def pick(icp: Sequence[Any], other: Sequence[Any]) -> Any:
            return rng.choice(icp if rng.random() < match else other)

        low, high = pick(cat.ICP_EMPLOYEES, cat.OTHER_EMPLOYEES)
        employees = rng.randint(low, high)
        icp_revenue = rng.random() < match
        per_head = rng.uniform(90_000, 250_000) if icp_revenue else rng.uniform(20_000, 60_000)
        revenue = max(employees * per_head, 5_500_000 if icp_revenue else 0)
        if not icp_revenue:
            revenue = min(revenue, 4_900_000)
        return {
            "company": company,
            "industry": pick(cat.ICP_INDUSTRIES, cat.OTHER_INDUSTRIES),
            "employees": employees,
            "revenue": int(round(revenue, -5)),
            "title": pick(cat.SENIOR_TITLES, cat.OTHER_TITLES),
            "country": pick(cat.ICP_COUNTRIES, cat.OTHER_COUNTRIES),
        }

    def _capture_time(self, early: bool) -> datetime:
        rng = self.rng
        while True:
            day = rng.randrange(6 if early else QUARTER_DAYS - 1)
            weekend = (QUARTER_START + timedelta(days=day)).weekday() >= 5
            if not weekend or rng.random() < 0.2:
                break
        minutes = rng.randrange(7 * 60, 19 * 60)
        return QUARTER_START + timedelta(days=day, minutes=minutes)

    # --- marketing ----------------------------------------------------------------------

    def _capture(self, t: datetime) -> None:
        self._emit(
            t,
            c.CaptureLead,
            self.source.actor,
            source=self.source.name,
            campaign=self.campaign,
            attributes=self.attributes,
        )
        self._rescore(t, crossed_from=None)
        if self.source.first_touch:
            self._engagement(self.source.first_touch)(t)
        count, mean_gap_days, kinds = {
            "cold": (self.rng.choice((0, 0, 1, 1, 2)), 12.0, cat.COLD_KINDS),
            "warm": (self.rng.randint(1, 4), 6.0, cat.WARM_KINDS),
            "hot": (self.rng.randint(3, 6), 2.5, cat.HOT_KINDS),
        }[self.intent]
        self._schedule_engagements(t, count, mean_gap_days, kinds)
        if (
            self.source.name == "events"
            and self._choose("manual_mql", (("yes", 0.3), ("no", 0.7))) == "yes"
        ):
            self._later(t, (20, 72), self._mark_mql(cat.MANUAL_MQL_REASONS["events"]))
        if (
            self.fit_tier == "poor"
            and self._choose("disqualify_new", (("yes", 0.12), ("no", 0.88))) == "yes"
        ):
            reason = self.rng.choice(cat.DISQUALIFY_AT_CAPTURE)
            self._later(t, (4, 96), self._disqualify(reason, cat.MARKETING_OPS))

    def _schedule_engagements(
        self, t: datetime, count: int, mean_gap_days: float, kinds: Sequence[tuple[str, int]]
    ) -> None:
        names = [k for k, _ in kinds]
        weights = [w for _, w in kinds]
        at = t
        for _ in range(count):
            at += timedelta(minutes=round(self.rng.expovariate(1 / mean_gap_days) * 1440) + 30)
            self._at(at, self._engagement(self.rng.choices(names, weights=weights)[0]))

    def _engagement(self, kind: str) -> Callable[[datetime], None]:
        def engage(t: datetime) -> None:
            if self.unsubscribed:
                return
            number = len(self.engagements) + 1
            self._emit(
                t,
                c.RecordEngagement,
                cat.ENGAGEMENT_ACTOR,
                event_id=f"{self.prefix}-e{number:02d}",
                kind=kind,
                source=self.source.name,
                campaign=self.campaign,
                properties=_engagement_properties(kind, self.campaign),
            )
            before = score_lead(self.q.rules, self.attributes, self.engagements, t).total
            self.engagements.append(Engagement(kind=kind, occurred_at=t))
            self._rescore(t, crossed_from=before)
            self.unsubscribed = kind == "unsubscribe"
            if (
                kind == "demo_request"
                and self.fit >= self.q.perfect_fit
                and _POSITION.get(self.stage, 9) < _POSITION["sql"]
                and self._choose("fast_track", (("yes", 0.6), ("no", 0.4))) == "yes"
            ):
                self._later(t, (0.3, 1.5), self._fast_track)

        return engage

    def _rescore(self, t: datetime, crossed_from: float | None) -> None:
        """What the Lead aggregate does after a capture or an engagement."""
        result = score_lead(self.q.rules, self.attributes, self.engagements, t)
        if result.total == self.score and result.rule_version == self.rule_version:
            return
        self.score, self.rule_version = result.total, result.rule_version
        threshold = self.q.rules.mql_threshold
        if result.total < threshold or self.stage not in _NURTURING:
            return
        if self.stage == "recycled" and (crossed_from is None or crossed_from >= threshold):
            return
        self._enter("mql", t)

    def _mark_mql(self, reason: str) -> Callable[[datetime], None]:
        def mark(t: datetime) -> None:
            if self.stage in _NURTURING:
                self._emit(t, c.MarkMql, cat.MARKETING_OPS, reason=reason)
                self._enter("mql", t)

        return mark

    def _fast_track(self, t: datetime) -> None:
        if _POSITION.get(self.stage, 9) >= _POSITION["sql"]:
            return
        reason = cat.FAST_TRACK_REASON.format(fit=self.fit)
        self._emit(t, c.FastTrack, self.account_executive, to_stage="sql", reason=reason)
        self._enter("sql", t)

    # --- sales development --------------------------------------------------------------

    def _enter(self, stage: str, t: datetime) -> None:
        self.stage = stage
        if stage == "mql":
            self.mql_cycles += 1
            self._on_mql(t)
        elif stage == "sal":
            self._later(t, (20, 140), self._discovery)
        elif stage == "sql":
            self._on_sql(t)
        elif stage == "recycled":
            self._on_recycled(t)
        elif (
            stage == "disqualified"
            and self._choose("disqualified", (("reopen", 0.1), ("none", 0.9))) == "reopen"
        ):
            self._later(t, (72, 400), self._reopen_lead)

    def _on_mql(self, t: datetime) -> None:
        if self.mql_cycles > 3:
            return
        accept = {"ideal": 0.85, "good": 0.75, "average": 0.55, "poor": 0.3}[self.fit_tier]
        decision = self._choose(
            "sdr",
            (
                ("accept", accept * 0.92),
                ("reject", (1 - accept) * 0.92),
                ("disqualify", 0.03),
                ("ignore", 0.05),
            ),
        )
        if decision == "ignore":
            return
        sla = self.q.sla_hours
        late = self.rng.random() < 0.15 and not self.scripted
        hours = (sla * 1.1, sla * 3) if late else (min(2.0, sla / 4), sla * 0.85)
        self._later(t, hours, self._sdr_contact(decision))

    def _sdr_contact(self, decision: str) -> Callable[[datetime], None]:
        def contact(t: datetime) -> None:
            if self.stage != "mql":
                return
            channel = self.rng.choices(("call", "email", "social"), weights=(5, 4, 1))[0]
            outcome = self.rng.choice(cat.CONTACT_OUTCOMES[channel])
            self._emit(t, c.LogContact, self.owner, channel=channel, outcome=outcome)
            self._later(t, (0.5, 4), self._sdr_decision(decision))

        return contact

    def _sdr_decision(self, decision: str) -> Callable[[datetime], None]:
        def decide(t: datetime) -> None:
            if self.stage != "mql":
                return
            if decision == "accept":
                self._emit(t, c.AcceptLead, self.owner, owner=self.owner)
                self._enter("sal", t)
            elif decision == "reject":
                reason = self.rng.choice(cat.REJECT_REASONS)
                self._emit(t, c.RejectLead, self.owner, reason=reason)
                self.stage_before_exit = "mql"
                self._enter("recycled", t)
            else:
                self._disqualify(self.rng.choice(cat.DISQUALIFY_AT_CAPTURE), self.owner)(t)

        return decide

    def _discovery(self, t: datetime) -> None:
        if self.stage != "sal":
            return
        ae = self.account_executive
        self._emit(t, c.LogContact, ae, channel="meeting", outcome="discovery call held")
        outcome = self._choose(
            "discovery",
            (
                ("qualify", 0.55),
                ("fast_convert", 0.04),
                ("recycle", 0.16),
                ("disqualify", 0.1),
                ("wait", 0.15),
            ),
        )
        if outcome == "qualify":
            self._later(t, (2, 48), self._qualify)
        elif outcome == "fast_convert":
            self._later(t, (4, 72), self._open_deal(fast_track=True))
        elif outcome == "recycle":
            self._later(t, (24, 72), self._recycle(self.rng.choice(cat.RECYCLE_REASONS)))
        elif outcome == "disqualify":
            reason = self.rng.choice(cat.DISQUALIFY_AFTER_DISCOVERY)
            self._later(t, (24, 72), self._disqualify(reason, ae))
        else:
            self._later(t, (96, 200), self._follow_up)

    def _follow_up(self, t: datetime) -> None:
        if self.stage == "sal":
            self._emit(t, c.LogContact, self.account_executive, channel="email", outcome="no reply")

    def _qualify(self, t: datetime) -> None:
        if self.stage != "sal":
            return
        bant = cat.bant(tuple(self.rng.choice(options) for options in cat.BANT_OPTIONS))
        self._emit(t, c.QualifyLead, self.account_executive, bant=bant)
        self._enter("sql", t)

    def _on_sql(self, t: datetime) -> None:
        if self._choose("sql", (("open", 0.85), ("recycle", 0.15))) == "open":
            self._later(t, (20, 170), self._open_deal(fast_track=False))
        else:
            self._later(t, (120, 480), self._recycle(self.rng.choice(cat.RECYCLE_REASONS)))

    def _on_recycled(self, t: datetime) -> None:
        follow_up = self._choose(
            "recycled", (("nurture", 0.35), ("manual_mql", 0.08), ("none", 0.57))
        )
        if follow_up == "nurture":
            self._schedule_engagements(t, self.rng.randint(1, 3), 10.0, cat.WARM_KINDS)
        elif follow_up == "manual_mql":
            self._later(t, (200, 700), self._mark_mql(cat.MANUAL_MQL_REASONS["recycled"]))

    def _recycle(self, reason: str) -> Callable[[datetime], None]:
        def recycle(t: datetime) -> None:
            if self.stage in ("mql", "sal", "sql"):
                self._emit(t, c.RecycleLead, self.account_executive, reason=reason)
                self.stage_before_exit = self.stage
                self._enter("recycled", t)

        return recycle

    def _disqualify(self, reason: str, actor: str) -> Callable[[datetime], None]:
        def disqualify(t: datetime) -> None:
            if self.stage not in ("converted", "disqualified"):
                self._emit(t, c.DisqualifyLead, actor, reason=reason)
                self.stage_before_exit = self.stage
                self._enter("disqualified", t)

        return disqualify

    def _reopen_lead(self, t: datetime) -> None:
        if self.stage != "disqualified":
            return
        reason = self.rng.choice(cat.REOPEN_LEAD_REASONS)
        self._emit(t, c.ReopenLead, self.account_executive, reason=reason)
        self._enter(self.stage_before_exit or "new", t)

    # --- deals --------------------------------------------------------------------------

    def _open_deal(self, fast_track: bool) -> Callable[[datetime], None]:
        def open_deal(t: datetime) -> None:
            if self.stage != ("sal" if fast_track else "sql"):
                return
            close = (t + timedelta(days=self.rng.randint(30, 75))).date()
            amount = self._deal_amount(int(self.attributes["employees"]))
            self._emit(
                t,
                c.OpenDeal,
                self.account_executive,
                deal=self.deal_ref,
                lead=self.email,
                amount=amount,
                currency="EUR",
                owner=self.account_executive,
                expected_close_date=close,
                fast_track=fast_track,
            )
            self.stage = "converted"
            self._start_deal(t, amount, close)

        return open_deal


def _engagement_properties(kind: str, campaign: str) -> dict[str, Any]:
    properties: dict[str, dict[str, Any]] = {
        "page_view": {"url": "/product/pipeline-analytics"},
        "pricing_page_view": {"url": "/pricing"},
        "email_open": {"email": f"{campaign}-nurture"},
        "email_click": {"email": f"{campaign}-nurture", "link": "/blog/revops-benchmarks"},
        "form_submit": {"form": "contact-us"},
        "content_download": {"asset": "state-of-revops-2026.pdf"},
        "webinar_attended": {"webinar": campaign, "minutes": 45},
        "demo_request": {"form": "book-a-demo"},
        "unsubscribe": {"list": "newsletter"},
    }
    return properties[kind]


def _contact(rng: random.Random, taken: set[str]) -> tuple[str, str]:
    """A unique email address and the name of the company it belongs to."""
    first, last = rng.choice(cat.FIRST_NAMES), rng.choice(cat.LAST_NAMES)
    head, tail = rng.choice(cat.COMPANY_PREFIXES), rng.choice(cat.COMPANY_SUFFIXES)
    domain = f"{head}{tail}.example"
    email = f"{first}.{last}@{domain}"
    number = 1
    while email in taken:
        number += 1
        email = f"{first}.{last}{number}@{domain}"
    taken.add(email)
    return email, f"{head.capitalize()} {tail.capitalize()}"


def generate_quarter(
    seed: int = DEFAULT_SEED,
    leads: int = DEFAULT_LEADS,
    *,
    rules: ScoringRules | None = None,
    stage_model: StageModel | None = None,
) -> list[c.Command]:
    """The quarter's commands in business-time order (ties keep each lead's own order).

    ``rules`` and ``stage_model`` must be the ones the commands will be applied with (the
    defaults otherwise): the simulation uses them to know when a lead becomes an MQL and
    which pipeline stages a deal moves through.
    """
    if leads < 0:
        msg = f"the number of leads must not be negative (got {leads})"
        raise ValueError(msg)
    model = stage_model or load_stage_model()
    pipeline = model.pipeline(None)
    quarter = _Quarter(
        seed=seed,
        rules=rules or load_scoring_rules(),
        pipeline=pipeline,
        sla_hours=model.mql_acceptance_sla_hours,
        sources={s.name: s for s in cat.SOURCES},
    )
    names = random.Random(f"leadflow-demo:{seed}:names")
    taken: set[str] = set()
    timeline: list[tuple[datetime, int, int, c.Command]] = []
    for number in range(1, leads + 1):
        showcase = SHOWCASES[number - 1] if number <= len(SHOWCASES) else None
        journey = _Journey(quarter, number, _contact(names, taken), showcase)
        timeline.extend((t, number, k, command) for t, k, command in journey.run())
    timeline.sort(key=lambda item: (item[0], item[1], item[2]))
    return [command for *_, command in timeline]
