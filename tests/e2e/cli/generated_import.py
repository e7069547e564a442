"""A deterministic JSON Lines import: leads, engagements and stage changes, interleaved.

Every line is valid whatever the score-driven MQL rule decides, and any prefix of the file
is valid too, so it can be cut at any length.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
WINDOW = 50  # leads whose lines interleave at any moment

_KINDS = ("page_view", "pricing_page_view", "email_open", "email_click", "content_download")
_INDUSTRIES = ("software", "retail", "fintech", "manufacturing", "saas", "healthcare")
_TITLES = ("VP Sales", "Engineer", "Head of Marketing", "Analyst", "CTO", "Intern")
_COUNTRIES = ("de", "us", "fr", "br", "gb", "in")


def _lead_script(number: int, rng: random.Random) -> list[dict[str, Any]]:
    lead = f"lead{number:06d}@example.com"
    clock = T0 + timedelta(minutes=10 * number)

    def line(command: str, **fields: Any) -> dict[str, Any]:
        nonlocal clock
        clock += timedelta(minutes=rng.randint(1, 600))
        return {"command": command, "occurred_at": clock.isoformat(), **fields}

    script = [
        line(
            "capture_lead",
            lead=lead,
            source=rng.choice(("web", "webinar", "partner")),
            campaign=f"c{number % 7}",
            attributes={
                "industry": rng.choice(_INDUSTRIES),
                "employees": rng.randint(5, 9000),
                "title": rng.choice(_TITLES),
                "country": rng.choice(_COUNTRIES),
            },
        )
    ]
    script += [
        line("record_engagement", lead=lead, event_id=f"ev-{number}-{i}", kind=rng.choice(_KINDS))
        for i in range(rng.randint(3, 12))
    ]
    path = rng.random()
    if path < 0.25:
        deal = f"deal-{number:06d}"
        script += [
            line("fast_track", lead=lead, to_stage="sal", reason="demo request from a fit account"),
            line(
                "qualify_lead",
                lead=lead,
                bant={"budget": "50k", "authority": "VP", "need": "visibility", "timeline": "Q3"},
            ),
            line("open_deal", deal=deal, lead=lead, amount=str(rng.randint(1, 500) * 100)),
            line("move_deal", deal=deal, stage="needs_analysis"),
            line("move_deal", deal=deal, stage="proposal_sent"),
            line("win_deal", deal=deal)
            if rng.random() < 0.5
            else line("lose_deal", deal=deal, reason="no budget", competitor="Acme"),
        ]
    elif path < 0.35:
        script.append(line("disqualify_lead", lead=lead, reason="student"))
        if rng.random() < 0.5:
            script.append(line("reopen_lead", lead=lead, reason="changed jobs"))
    elif path < 0.45:
        script += [
            line("fast_track", lead=lead, to_stage="sal", reason="inbound call"),
            line("recycle_lead", lead=lead, reason="not now"),
        ]
    else:
        script.append(line("log_contact", lead=lead, channel="email", outcome="no reply"))
    return script


def generate_lines(total: int, seed: int = 20250106) -> Iterator[str]:
    """Exactly ``total`` JSON lines, the scripts of ``WINDOW`` leads interleaved."""
    rng = random.Random(seed)
    active: list[list[dict[str, Any]]] = []
    number = emitted = 0
    while emitted < total:
        while len(active) < WINDOW:
            active.append(_lead_script(number, rng))
            number += 1
        script = active[rng.randrange(len(active))]
        yield json.dumps(script.pop(0), separators=(",", ":"))
        emitted += 1
        if not script:
            active.remove(script)
