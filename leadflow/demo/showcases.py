"""Scripted journeys for the first leads of every quarter, so that even a small quarter
shows every kind of thing: each names the decisions it forces (consumed in order at each
decision point of the simulation) and engagements that make it an MQL by score early on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Script = Mapping[str, Sequence[str]]


@dataclass(frozen=True, slots=True)
class Showcase:
    """A scripted journey: forced decisions (consumed in order) and early engagements."""

    source: str
    decisions: Script
    engagements: tuple[tuple[float, str], ...] = ()  # (hours after capture, kind)


SHOWCASES: tuple[Showcase, ...] = (
    Showcase(  # the happy path: MQL by score, won after a discount
        "referral",
        {
            "fit_tier": ["ideal"],
            "intent": ["warm"],
            "sdr": ["accept"],
            "discovery": ["qualify"],
            "sql": ["open"],
            "deal": ["advance"] * 4,
            "win": ["discount"],
        },
        ((0.5, "form_submit"),),
    ),
    Showcase(  # demo request from a perfect-fit account: fast-tracked to SQL
        "paid_search",
        {
            "fit_tier": ["ideal"],
            "intent": ["hot"],
            "sdr": ["ignore"],
            "fast_track": ["yes"],
            "sql": ["open"],
            "deal": ["advance", "advance", "advance", "lose"],
            "after_loss": ["none"],
        },
        ((1.0, "demo_request"),),
    ),
    Showcase(  # deal opened straight after discovery (fast-tracked conversion), moved back
        "outbound",
        {
            "fit_tier": ["ideal"],
            "intent": ["cold"],
            "sdr": ["accept"],
            "discovery": ["fast_convert"],
            "deal": ["advance", "advance", "back", "advance", "advance", "advance"],
            "win": ["final_amount"],
        },
        ((1.0, "email_click"), (2.0, "pricing_page_view"), (3.0, "form_submit")),
    ),
    Showcase(  # lost to a competitor, then reopened
        "webinar",
        {
            "fit_tier": ["ideal"],
            "intent": ["warm"],
            "sdr": ["accept"],
            "discovery": ["qualify"],
            "sql": ["open"],
            "deal": ["advance", "advance", "lose", "advance", "advance"],
            "lost_reason": ["chose a competitor"],
            "after_loss": ["reopen"],
        },
    ),
    Showcase(  # an MQL nobody accepted: stalled past the SLA
        "web_form",
        {"fit_tier": ["ideal"], "intent": ["cold"], "sdr": ["ignore"]},
    ),
    Showcase(  # rejected, recycled, marked MQL again by hand, accepted
        "web_form",
        {
            "fit_tier": ["ideal"],
            "intent": ["cold"],
            "sdr": ["reject", "accept"],
            "recycled": ["manual_mql"],
            "discovery": ["wait"],
        },
    ),
    Showcase(  # disqualified after discovery, reopened, qualified; the deal stalls
        "events",
        {
            "fit_tier": ["ideal"],
            "intent": ["cold"],
            "manual_mql": ["no"],
            "sdr": ["accept"],
            "discovery": ["disqualify", "qualify"],
            "disqualified": ["reopen"],
            "sql": ["open"],
            "deal": ["advance", "slip", "stall"],
        },
        ((3.0, "form_submit"),),
    ),
    Showcase(  # a trade-show conversation marked MQL by hand; recycled after BANT
        "events",
        {
            "fit_tier": ["poor"],
            "intent": ["cold"],
            "disqualify_new": ["no"],
            "manual_mql": ["yes"],
            "sdr": ["accept"],
            "discovery": ["qualify"],
            "sql": ["recycle"],
            "recycled": ["none"],
        },
    ),
)
