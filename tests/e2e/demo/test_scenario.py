"""The seeded quarter generator: deterministic, ordered, and containing every kind of thing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import cache
from typing import TypeVar

import pytest

from domain import commands as c
from domain.scoring import ENGAGEMENT_KINDS
from domain.stage_model import load_stage_model
from leadflow.demo import (
    DEFAULT_LEADS,
    DEFAULT_SEED,
    QUARTER_END,
    QUARTER_START,
    generate_quarter,
)
from leadflow.demo.showcases import SHOWCASES

T = TypeVar("T", bound=c.Command)
OPEN_STAGES = [s.name for s in load_stage_model().pipeline(None).open_stages]


@cache
def default_quarter() -> tuple[c.Command, ...]:
    return tuple(generate_quarter(DEFAULT_SEED, DEFAULT_LEADS))


def dumped(commands: Sequence[c.Command]) -> list[str]:
    return [command.model_dump_json() for command in commands]


def of(commands: Sequence[c.Command], kind: type[T]) -> list[T]:
    return [command for command in commands if isinstance(command, kind)]


def name(command: c.Command) -> str:
    return str(type(command).model_fields["command"].default)


def mix_of(commands: Sequence[c.Command]) -> Counter[str]:
    return Counter(name(x) for x in commands)


def test_same_seed_gives_the_same_commands() -> None:
    assert dumped(generate_quarter(7, 150)) == dumped(generate_quarter(7, 150))


def test_different_seeds_give_different_quarters() -> None:
    first, second = generate_quarter(7, 150), generate_quarter(8, 150)
    assert dumped(first) != dumped(second)
    assert {x.lead for x in of(first, c.CaptureLead)} != {x.lead for x in of(second, c.CaptureLead)}


def test_a_smaller_quarter_is_the_first_leads_of_a_bigger_one() -> None:
    small = generate_quarter(11, 40)
    journeys = {f"demo-11-L{n:05d}-" for n in range(1, 41)}
    big = [x for x in generate_quarter(11, 120) if (x.command_id or "")[:15] in journeys]
    assert dumped(small) == dumped(big)


def test_commands_are_in_business_time_order_inside_the_quarter() -> None:
    commands = generate_quarter(3, 300)
    times = [x.occurred_at for x in commands]
    assert times == sorted(times)
    assert times[0] >= QUARTER_START and times[-1] < QUARTER_END
    assert len(of(commands, c.CaptureLead)) == 300


def test_ids_are_unique_and_derived_from_the_seed() -> None:
    commands = generate_quarter(5, 300)
    ids = [x.command_id for x in commands]
    assert len(set(ids)) == len(ids)
    assert all((i or "").startswith("demo-5-L") for i in ids)
    emails = [x.lead for x in of(commands, c.CaptureLead)]
    assert len(set(emails)) == len(emails)
    assert all(e.endswith(".example") for e in emails)
    engagement_ids = [x.event_id for x in of(commands, c.RecordEngagement)]
    assert len(set(engagement_ids)) == len(engagement_ids)


def test_negative_size_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        generate_quarter(1, -1)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_even_a_tiny_quarter_has_every_command(seed: int) -> None:
    commands = generate_quarter(seed, len(SHOWCASES))
    assert set(mix_of(commands)) == set(c.COMMAND_NAMES)


def test_the_default_quarter_is_a_few_thousand_leads_from_several_sources() -> None:
    commands = default_quarter()
    captures = of(commands, c.CaptureLead)
    assert len(captures) == DEFAULT_LEADS >= 2000
    sources = Counter(x.source for x in captures)
    assert set(sources) == {"web_form", "webinar", "paid_search", "events", "outbound", "referral"}
    assert min(sources.values()) > 100
    assert len({x.campaign for x in captures}) >= 10
    for field in ("industry", "employees", "revenue", "title", "country"):
        values = {str(x.attributes[field]) for x in captures}
        assert len(values) >= 5, field
    days = {x.occurred_at.date() for x in captures}
    assert len(days) > 80  # spread over the quarter


def test_the_default_quarter_contains_every_kind_of_thing() -> None:
    commands = default_quarter()
    mix = mix_of(commands)
    assert set(mix) == set(c.COMMAND_NAMES)
    engagement = Counter(x.kind for x in of(commands, c.RecordEngagement))
    assert set(engagement) == set(ENGAGEMENT_KINDS)
    assert mix["record_engagement"] > mix["capture_lead"]

    contacts = of(commands, c.LogContact)
    assert {x.channel for x in contacts} >= {"call", "email", "meeting"}
    assert all(x.actor and x.actor.startswith(("sdr.", "ae.")) for x in contacts)

    assert mix["mark_mql"] > 0  # manual MQLs besides the ones scored into MQL
    assert len({x.reason for x in of(commands, c.RejectLead)}) >= 3
    assert mix["accept_lead"] > mix["reject_lead"] > 0
    qualified = of(commands, c.QualifyLead)
    assert qualified and all(x.bant.budget and x.bant.timeline for x in qualified)

    fast = of(commands, c.FastTrack)
    assert fast and all(x.to_stage == "sql" and "demo request" in x.reason for x in fast)
    opened = of(commands, c.OpenDeal)
    assert any(x.fast_track for x in opened) and any(not x.fast_track for x in opened)
    assert all(x.lead for x in opened)

    lost = of(commands, c.LoseDeal)
    assert len({x.reason for x in lost}) >= 3
    assert any(x.competitor for x in lost) and any(x.competitor is None for x in lost)
    assert any(x.amount is not None for x in of(commands, c.WinDeal))
    updates = of(commands, c.UpdateDeal)
    assert any(x.amount is not None for x in updates)
    assert any(x.expected_close_date is not None for x in updates)
    for name in ("reopen_deal", "recycle_lead", "disqualify_lead", "reopen_lead"):
        assert mix[name] > 0, name


def test_deals_move_forward_and_sometimes_backwards() -> None:
    position: dict[str, int] = {}
    forward = backward = 0
    for command in default_quarter():
        if isinstance(command, c.OpenDeal):
            position[command.deal] = 0
        elif isinstance(command, c.MoveDeal):
            target = OPEN_STAGES.index(command.stage)
            forward += target > position[command.deal]
            backward += target < position[command.deal]
            position[command.deal] = target
        elif isinstance(command, c.ReopenDeal) and command.stage:
            position[command.deal] = OPEN_STAGES.index(command.stage)
    assert forward > 5 * backward > 0


def test_the_funnel_narrows() -> None:
    mix = mix_of(default_quarter())
    assert mix["capture_lead"] > mix["accept_lead"] > mix["qualify_lead"] > mix["open_deal"]
    assert mix["open_deal"] > mix["win_deal"] > 0
