"""Business time never runs backwards on a lead's or a deal's stage line; activity may
come late; ``backdated`` records an out-of-order change at the last one, visibly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.utils import get_topic
from hypothesis import given
from hypothesis import strategies as st

from domain.aggregate import EventContext, project_aggregate
from domain.business_time import BeforeLastChange
from domain.deal import Deal
from domain.errors import IllegalTransition
from domain.event_state import stored_state
from domain.events import (
    ContactLogged,
    DealAmountChanged,
    DealOpened,
    DealWon,
    DomainEvent,
    EngagementRecorded,
    LeadAccepted,
    LeadAttributesUpdated,
    LeadConverted,
    LeadQualifiedAsMQL,
    LeadScored,
)
from domain.hash_chain import StoredLink, verify_chain
from domain.lead import Lead
from tests.unit.domain.lifecycle_fixtures import BANT, PIPELINE, RULES, T0, at, ctx, lead_in
from tests.unit.domain.lifecycle_fixtures import new_deal as deal_opened_at_t0
from tests.unit.domain.lifecycle_fixtures import new_lead as lead_captured_at_t0
from tests.unit.domain.test_lifecycle_properties import DEAL_OPS, FAST, LEAD_OPS, apply_lead_op

STRONG = {"industry": "software", "employees": 300, "title": "CTO"}


def backdated() -> EventContext:
    return replace(ctx(), backdated=True)


# --- refused: a change before the last stage change ------------------------------------


def test_deal_won_before_it_was_opened_is_refused_naming_both_times() -> None:
    deal = deal_opened_at_t0()
    version = deal.version
    with pytest.raises(BeforeLastChange) as info:
        deal.win(None, PIPELINE, ctx(), at(-31))
    message = str(info.value)
    assert message == (
        f"deal 'deal-1' ({deal.id}) is in stage 'qualification' since 2026-01-05T09:00:00Z: "
        "cannot win it at 2025-12-05T09:00:00Z, before its last stage change; send it with "
        "backdated=true to record it at the last change"
    )
    assert isinstance(info.value, IllegalTransition)
    assert deal.version == version
    assert deal.status == "open"


def test_accept_dated_before_capture_is_refused() -> None:
    lead = lead_in("mql")  # captured at T0, MQL at T0 + 1 day
    with pytest.raises(BeforeLastChange, match="since 2026-01-06T09:00:00Z: cannot accept it at"):
        lead.accept("sam", None, ctx(), at(-1))
    assert lead.stage == "mql"


LEAD_CHANGES: dict[str, tuple[str, Callable[[Lead, EventContext, datetime], Any]]] = {
    "mark_mql": ("new", lambda lead, c, t: lead.mark_mql(None, c, t)),
    "accept": ("mql", lambda lead, c, t: lead.accept("sam", None, c, t)),
    "reject": ("mql", lambda lead, c, t: lead.reject("no budget", c, t)),
    "qualify": ("sal", lambda lead, c, t: lead.qualify(BANT, c, t)),
    "fast_track": ("new", lambda lead, c, t: lead.fast_track("sql", "referral", c, t)),
    "recycle": ("sql", lambda lead, c, t: lead.recycle("later", c, t)),
    "disqualify": ("sal", lambda lead, c, t: lead.disqualify("spam", c, t)),
    "reopen": ("disqualified", lambda lead, c, t: lead.reopen(None, c, t)),
    "convert": ("sql", lambda lead, c, t: lead.convert(uuid4(), "deal-9", False, c, t)),
    "convert again": ("converted", lambda lead, c, t: lead.convert(uuid4(), "d-2", False, c, t)),
}


@pytest.mark.parametrize("name", sorted(LEAD_CHANGES))
def test_every_lead_stage_change_before_the_last_one_is_refused(name: str) -> None:
    stage, change = LEAD_CHANGES[name]
    lead = lead_in(stage)
    since = lead.entered_stage_at
    before = lead.model_dump()
    with pytest.raises(BeforeLastChange) as info:
        change(lead, ctx(), since - timedelta(hours=1))
    assert (info.value.since, info.value.stage) == (since, stage)
    assert "ada@example.com" in str(info.value)
    assert lead.model_dump() == before
    # at the very time of the last change it is in order
    change(lead, ctx(), since)


DEAL_CHANGES: dict[str, Callable[[Deal, EventContext, datetime], Any]] = {
    "move": lambda deal, c, t: deal.move("proposal_sent", PIPELINE, c, t),
    "win": lambda deal, c, t: deal.win(None, PIPELINE, c, t),
    "lose": lambda deal, c, t: deal.lose("price", None, PIPELINE, c, t),
    "amount": lambda deal, c, t: deal.change_amount(Decimal("99"), None, c, t),
    "close date": lambda deal, c, t: deal.change_close_date(at(90).date(), c, t),
}


@pytest.mark.parametrize("name", sorted(DEAL_CHANGES))
def test_every_deal_change_before_the_last_stage_change_is_refused(name: str) -> None:
    deal = deal_opened_at_t0()
    deal.move("needs_analysis", PIPELINE, ctx(), at(5))
    before = deal.model_dump()
    with pytest.raises(BeforeLastChange, match="since 2026-01-10T09:00:00Z"):
        DEAL_CHANGES[name](deal, ctx(), at(3))
    assert deal.model_dump() == before


def test_reopening_a_deal_before_it_was_closed_is_refused() -> None:
    deal = deal_opened_at_t0()
    deal.lose("price", None, PIPELINE, ctx(), at(10))
    with pytest.raises(BeforeLastChange, match="cannot reopen it into 'qualification'"):
        deal.reopen(None, None, PIPELINE, ctx(), at(9))
    assert deal.status == "lost"


# --- accepted: late activity ------------------------------------------------------------


def test_engagement_and_contact_dated_before_capture_are_accepted_at_their_time() -> None:
    lead = lead_in("sal")
    lead.record_engagement("late", "webinar_attended", {}, None, None, RULES, ctx(), at(-2))
    lead.log_contact("call", None, ctx(), at(-1))
    lead.update_attributes({"country": "DE"}, RULES, ctx(), at(-3))
    events = lead.collect_events()
    assert next(e for e in events if isinstance(e, EngagementRecorded)).occurred_at == at(-2)
    assert next(e for e in events if isinstance(e, ContactLogged)).occurred_at == at(-1)
    assert all(e.backdated_from is None for e in events)


def test_automatic_mql_from_a_late_engagement_is_no_earlier_than_the_last_change() -> None:
    lead = lead_captured_at_t0(attributes=STRONG)
    for n, kind in enumerate(["demo_request", "webinar_attended", "pricing_page_view"]):
        lead.record_engagement(f"ev-{n}", kind, {}, None, None, RULES, ctx(), at(-3 + n / 10))
    assert lead.stage == "mql"
    mql = next(e for e in lead.collect_events() if isinstance(e, LeadQualifiedAsMQL))
    assert (mql.via, mql.occurred_at, mql.backdated_from) == ("score", T0, None)
    assert lead.entered_stage_at == T0


def test_scoring_of_late_engagements_is_deterministic_on_replay() -> None:
    lead = lead_in("sql")
    lead.record_engagement("a", "email_click", {}, None, None, RULES, ctx(), at(-1))
    lead.record_engagement("b", "demo_request", {}, None, None, RULES, ctx(), at(-2))
    replayed = project_aggregate(None, lead.collect_events())
    assert replayed is not None
    assert replayed.model_dump() == lead.model_dump()


# --- backdated: recorded at the last change, with the source's time ---------------------


def test_backdated_accept_is_recorded_at_the_last_change_with_its_original_time() -> None:
    lead = lead_in("mql")
    lead.collect_events()
    lead.accept("sam", None, backdated(), at(-1))
    [event] = lead.collect_events()
    assert isinstance(event, LeadAccepted)
    assert (event.occurred_at, event.backdated_from) == (at(1), at(-1))
    assert (lead.stage, lead.entered_stage_at) == ("sal", at(1))


def test_backdated_win_before_opening_closes_the_deal_at_its_opening() -> None:
    deal = deal_opened_at_t0()
    deal.collect_events()
    deal.win(None, PIPELINE, backdated(), at(-31))
    [event] = deal.collect_events()
    assert isinstance(event, DealWon)
    assert (event.occurred_at, event.backdated_from) == (T0, at(-31))
    assert deal.closed_at == T0


def test_backdated_flag_changes_nothing_for_a_change_in_order() -> None:
    deal = deal_opened_at_t0()
    deal.collect_events()
    deal.win(None, PIPELINE, backdated(), at(2))
    [event] = deal.collect_events()
    assert (event.occurred_at, event.backdated_from) == (at(2), None)


def test_backdated_conversion_opens_the_deal_at_the_conversion_time() -> None:
    lead = lead_in("sql")  # SQL since T0 + 3 days
    deal_id = uuid4()
    converted_at = lead.convert(deal_id, "deal-7", False, backdated(), at(1))
    deal = Deal.open(
        deal_id,
        "deal-7",
        PIPELINE,
        Decimal(10),
        "EUR",
        lead.id,
        lead.external_id,
        None,
        None,
        backdated(),
        at(1),
        converted_at=converted_at,
    )
    converted = lead.collect_events()[-1]
    [opened] = deal.collect_events()
    assert isinstance(converted, LeadConverted)
    assert isinstance(opened, DealOpened)
    assert converted.occurred_at == opened.occurred_at == deal.opened_at == at(3)
    assert converted.backdated_from == opened.backdated_from == at(1)


# --- stored form: the new field is additive ---------------------------------------------


def _link(event: DomainEvent) -> StoredLink:
    return StoredLink(
        get_topic(type(event)),
        str(event.originator_id),
        event.originator_version,
        stored_state(event),
    )


def test_an_event_without_backdating_is_stored_and_hashed_as_before_the_field() -> None:
    deal = deal_opened_at_t0()
    deal.win(None, PIPELINE, ctx(), at(1))
    events = deal.collect_events()
    for event in events:
        assert "backdated_from" not in stored_state(event)
    assert verify_chain([_link(e) for e in events]).ok
    # an event stored before the field existed loads with it unset
    state = stored_state(events[-1])
    loaded = DealWon.model_validate(
        {**state, "originator_id": deal.id, "originator_version": events[-1].originator_version}
    )
    assert loaded.backdated_from is None
    assert loaded == events[-1]


def test_a_backdated_event_stores_its_original_time_inside_the_hash_chain() -> None:
    deal = deal_opened_at_t0()
    deal.win(None, PIPELINE, backdated(), at(-31))
    events = deal.collect_events()
    assert stored_state(events[-1])["backdated_from"] == "2025-12-05T09:00:00Z"
    chain = [_link(e) for e in events]
    assert verify_chain(chain).ok
    edited = dict(chain[-1].state, backdated_from="2025-12-06T09:00:00Z")
    chain[-1] = StoredLink(chain[-1].topic, chain[-1].originator_id, 2, edited)
    assert not verify_chain(chain).ok


# --- property: whatever the order of the times, the stage line never goes back ---------

_DAY = st.integers(-40, 40)


_ACTIVITY = (EngagementRecorded, ContactLogged, LeadScored, LeadAttributesUpdated)


@FAST
@given(st.lists(st.tuples(LEAD_OPS, _DAY, st.booleans()), max_size=30))
def test_lead_stage_line_never_goes_back_in_business_time(
    steps: list[tuple[tuple[Any, ...], int, bool]],
) -> None:
    lead = lead_captured_at_t0(attributes=STRONG)
    events: list[DomainEvent] = list(lead.collect_events())
    for op, day, back in steps:
        since, before = lead._line().since, lead.model_dump()
        try:
            apply_lead_op(lead, op, day, backdated if back else ctx)
        except BeforeLastChange as refused:
            assert not back and at(day) < since == refused.since
            assert lead.model_dump() == before
        except IllegalTransition:
            assert lead.model_dump() == before
        new = lead.collect_events()
        for event in new:
            if event.backdated_from is not None:
                assert back and event.backdated_from == at(day) < event.occurred_at == since
        events += new
    times = [e.occurred_at for e in events if not isinstance(e, _ACTIVITY)]
    assert times == sorted(times)
    replayed = project_aggregate(None, events)
    assert replayed is not None
    assert replayed.model_dump() == lead.model_dump()


@FAST
@given(st.lists(st.tuples(DEAL_OPS, _DAY, st.booleans()), max_size=30))
def test_deal_stage_line_never_goes_back_in_business_time(
    steps: list[tuple[tuple[Any, ...], int, bool]],
) -> None:
    deal = deal_opened_at_t0()
    for op, day, back in steps:
        c = backdated() if back else ctx()
        try:
            if op[0] == "move":
                deal.move(op[1], PIPELINE, c, at(day))
            elif op[0] == "win":
                deal.win(None, PIPELINE, c, at(day))
            elif op[0] == "reopen":
                deal.reopen(None, None, PIPELINE, c, at(day))
            elif op[0] == "lose":
                deal.lose(op[1], None, PIPELINE, c, at(day))
            else:
                deal.change_amount(Decimal(op[1]), None, c, at(day))
        except BeforeLastChange:
            assert not back
        except IllegalTransition:
            pass
        assert deal.closed_at is None or deal.closed_at >= deal.opened_at
    events = deal.collect_events()
    times = [e.occurred_at for e in events if not isinstance(e, DealAmountChanged)]
    assert times == sorted(times)
    assert all(e.backdated_from is None or e.backdated_from < e.occurred_at for e in events)
