"""The aggregate cache hands each command a deep copy: what the command does to its copy
(events, nested attributes, the engagement fold) never reaches the cached original."""

from __future__ import annotations

import copy
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.aggregate import Aggregate
from tests.unit.domain.lifecycle_fixtures import (
    BANT,
    PIPELINE,
    RULES,
    at,
    ctx,
    lead_in,
    new_deal,
    new_lead,
)

A = TypeVar("A", bound=Aggregate)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)


def snapshot_of(aggregate: Aggregate) -> tuple[dict[str, Any], set[str], int]:
    dumped = aggregate.model_dump()
    return dumped, set(aggregate.model_fields_set), len(aggregate.pending_events)


def assert_a_faithful_independent_copy(original: A) -> A:
    before = snapshot_of(original)
    copied = copy.deepcopy(original)
    assert type(copied) is type(original)
    assert snapshot_of(copied) == before
    assert copied == original
    return copied


@pytest.mark.parametrize("stage", ["new", "mql", "sal", "sql", "recycled", "converted"])
def test_a_copied_lead_takes_commands_alone(stage: str) -> None:
    lead = lead_in(stage)
    lead.collect_events()
    before = snapshot_of(lead)
    copied = assert_a_faithful_independent_copy(lead)

    copied.record_engagement("e-9", "webinar_attended", {}, None, None, RULES, ctx(), at(9))
    copied.update_attributes({"industry": "saas", "title": "CTO"}, RULES, ctx(), at(9))
    copied.reached.append("disqualified")
    if copied.bant is None:
        copied.bant = BANT

    assert snapshot_of(lead) == before
    assert copied.version > lead.version


def test_a_copied_deal_takes_commands_alone() -> None:
    deal = new_deal()
    deal.collect_events()
    before = snapshot_of(deal)
    copied = assert_a_faithful_independent_copy(deal)

    copied.move(PIPELINE.stages[1].name, PIPELINE, ctx(), at(1))

    assert snapshot_of(deal) == before


@settings(max_examples=40, deadline=None)
@given(attributes=st.dictionaries(st.text(max_size=4), json_values, max_size=4))
def test_nested_attributes_are_copied_not_shared(attributes: dict[str, Any]) -> None:
    lead = new_lead(attributes={**attributes, "nested-deep": {"deep": [attributes]}})
    before = snapshot_of(lead)
    copied = assert_a_faithful_independent_copy(lead)

    copied.attributes["nested-deep"]["deep"][0]["added"] = 1
    copied.pending_events.clear()

    assert snapshot_of(lead) == before
