"""Property tests: random command sequences never break the lifecycle invariants."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from uuid import uuid4

from eventsourcing.utils import get_topic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.aggregate import Aggregate, EventContext, project_aggregate
from domain.errors import IllegalTransition
from domain.event_state import stored_state
from domain.events import DomainEvent, LeadConverted, LeadFastTracked
from domain.hash_chain import StoredLink, verify_chain
from domain.scoring import ENGAGEMENT_KINDS
from tests.unit.domain.lifecycle_fixtures import BANT, PIPELINE, RULES, at, ctx, new_deal, new_lead

LEAD_OPS = st.one_of(
    st.tuples(st.just("engage"), st.sampled_from(ENGAGEMENT_KINDS), st.integers(0, 30)),
    st.tuples(st.sampled_from(["mark_mql", "accept", "qualify", "reopen", "contact"])),
    st.tuples(st.sampled_from(["reject", "recycle", "disqualify"])),
    st.tuples(st.just("fast_track"), st.sampled_from(["mql", "sal", "sql"])),
    st.tuples(st.just("convert"), st.booleans()),
)
DEAL_STAGES = [s.name for s in PIPELINE.stages]
DEAL_OPS = st.one_of(
    st.tuples(st.just("move"), st.sampled_from(DEAL_STAGES)),
    st.tuples(st.sampled_from(["win", "reopen"])),
    st.tuples(st.just("lose"), st.sampled_from(["price", "timing"])),
    st.tuples(st.just("amount"), st.integers(0, 10**6)),
)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def apply_lead_op(
    lead: Any, op: tuple[Any, ...], step: int, context: Callable[[], EventContext] = ctx
) -> None:
    when = at(step)
    name = op[0]
    if name == "engage":
        lead.record_engagement(f"e{op[2]}", op[1], {}, None, None, RULES, context(), when)
    elif name == "mark_mql":
        lead.mark_mql(None, context(), when)
    elif name == "accept":
        lead.accept("sam", None, context(), when)
    elif name == "qualify":
        lead.qualify(BANT, context(), when)
    elif name == "reopen":
        lead.reopen(None, context(), when)
    elif name == "contact":
        lead.log_contact("call", None, context(), when)
    elif name in ("reject", "recycle", "disqualify"):
        getattr(lead, name)("reason", context(), when)
    elif name == "fast_track":
        lead.fast_track(op[1], "perfect fit", context(), when)
    else:
        lead.convert(uuid4(), f"d{step}", op[1], context(), when)


def drive(lead: Any, ops: list[tuple[Any, ...]]) -> None:
    """Apply every op; refused ones are skipped (their refusal is tested elsewhere)."""
    for step, op in enumerate(ops, start=1):
        with contextlib.suppress(IllegalTransition):
            apply_lead_op(lead, op, step)


def links(events: list[DomainEvent]) -> list[StoredLink]:
    return [
        StoredLink(get_topic(type(e)), str(e.originator_id), e.originator_version, stored_state(e))
        for e in events
    ]


@FAST
@given(st.lists(LEAD_OPS, max_size=40))
def test_lead_invariants_hold_for_any_command_sequence(ops: list[tuple[Any, ...]]) -> None:
    lead = new_lead(attributes={"industry": "software"})
    events: list[DomainEvent] = []
    for step, op in enumerate(ops, start=1):
        before = lead.model_dump()
        try:
            apply_lead_op(lead, op, step)
        except IllegalTransition as refused:
            assert refused.stage == lead.stage
            assert lead.model_dump() == before  # a refusal changes nothing
        events += lead.collect_events()
        # exactly one stage, and it is one the lead has reached
        assert lead.stage in lead.reached
        assert len(set(lead.reached)) == len(lead.reached)
        # never SQL without BANT or a recorded fast-track
        if "sql" in lead.reached:
            fast = any(isinstance(e, LeadFastTracked | LeadConverted) for e in events)
            assert lead.bant is not None or fast


@FAST
@given(st.lists(LEAD_OPS, max_size=30))
def test_replaying_events_rebuilds_the_same_lead(ops: list[tuple[Any, ...]]) -> None:
    lead = new_lead(attributes={"industry": "software", "employees": 120})
    drive(lead, ops)
    events = lead.collect_events()
    replayed = project_aggregate(None, events)
    assert isinstance(replayed, Aggregate)
    assert replayed.model_dump() == lead.model_dump()
    assert verify_chain(links(events)).ok


@FAST
@given(st.lists(DEAL_OPS, max_size=40))
def test_closed_deal_changes_only_by_reopening(ops: list[tuple[Any, ...]]) -> None:
    deal = new_deal()
    for step, op in enumerate(ops, start=1):
        was_closed = deal.status != "open"
        before = deal.model_dump()
        try:
            if op[0] == "move":
                deal.move(op[1], PIPELINE, ctx(), at(step))
            elif op[0] == "win":
                deal.win(None, PIPELINE, ctx(), at(step))
            elif op[0] == "reopen":
                deal.reopen(None, None, PIPELINE, ctx(), at(step))
            elif op[0] == "lose":
                deal.lose(op[1], None, PIPELINE, ctx(), at(step))
            else:
                deal.change_amount(Decimal(op[1]), None, ctx(), at(step))
        except IllegalTransition:
            assert deal.model_dump() == before
            continue
        if was_closed:
            assert op[0] == "reopen"
        assert (deal.status == "open") == (deal.stage in {s.name for s in PIPELINE.open_stages})
    events = deal.collect_events()
    replayed = project_aggregate(None, events)
    assert replayed is not None
    assert replayed.model_dump() == deal.model_dump()


@FAST
@given(st.lists(LEAD_OPS, min_size=1, max_size=20), st.data())
def test_hash_chain_detects_any_edited_event(
    ops: list[tuple[Any, ...]], data: st.DataObject
) -> None:
    lead = new_lead(attributes={"industry": "software"})
    drive(lead, ops)
    chain = links(lead.collect_events())
    assert verify_chain(chain).ok
    victim = data.draw(st.integers(0, len(chain) - 1))
    field = data.draw(st.sampled_from(sorted(k for k in chain[victim].state if k != "hash")))
    edited = dict(chain[victim].state)
    edited[field] = f"tampered-{edited[field]!r}"
    chain[victim] = StoredLink(
        chain[victim].topic, chain[victim].originator_id, chain[victim].originator_version, edited
    )
    verdict = verify_chain(chain)
    assert not verdict.ok
    assert verdict.broken_at_version == chain[victim].originator_version


def test_hash_chain_detects_deleted_and_reordered_events() -> None:
    lead = new_lead()
    lead.mark_mql(None, ctx(), at(1))
    lead.accept("sam", None, ctx(), at(2))
    chain = links(lead.collect_events())
    assert not verify_chain(chain[:1] + chain[2:]).ok
    assert not verify_chain([chain[1], chain[0], *chain[2:]]).ok
