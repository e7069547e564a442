"""A new event's digest through pydantic-core equals the canonical one (``event_digest``)
for any state an event class's dump can give: text of any code point, integers of any
size, floats of every magnitude (those pydantic-core spells differently go the canonical
way), nested objects in any key order, optional fields left out."""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.utils import get_topic
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.events import EVENT_CLASSES, DomainEvent
from domain.hash_chain import event_digest
from domain.new_event_digest import _layout_of, new_event_digest

ORIGINATOR = "00000000-0000-0000-0000-000000001ead"

floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-4, 9.99e-5, 1e-5, 1e16, 9999999999999998.0, 1e300, 5e-324]),
)
leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(2**63 - 9, 2**70), st.text(), floats
)
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
plain_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text())


@st.composite
def states(draw: st.DrawFn, event_class: type[DomainEvent]) -> dict[str, Any]:
    layout = _layout_of(event_class)
    # the dump's key order is the class's field order, not the sorted one
    keys = [k for k in event_class.model_fields if k in layout.order]
    state: dict[str, Any] = {}
    for key in keys:
        if draw(st.integers(0, 9)) == 0:
            continue  # an optional field left out of the stored state
        strategy = json_values if key in layout.checked else plain_values
        state[key] = draw(strategy)
    if draw(st.booleans()):
        state["hash"] = ""
    return state


@pytest.mark.parametrize("event_class", list(EVENT_CLASSES.values()), ids=list(EVENT_CLASSES))
@settings(max_examples=60, deadline=None)
@given(data=st.data(), version=st.integers(1, 2**63 - 1))
def test_the_new_digest_is_the_canonical_one(
    event_class: type[DomainEvent], data: st.DataObject, version: int
) -> None:
    state = data.draw(states(event_class))
    topic = get_topic(event_class)
    assert new_event_digest(event_class, topic, ORIGINATOR, version, state) == event_digest(
        topic, ORIGINATOR, version, state
    )


def test_a_state_with_a_key_the_class_has_not_goes_the_canonical_way() -> None:
    event_class = EVENT_CLASSES["ContactLogged"]
    state = {"channel": "email", "unexpected": 1e-7, "hash": ""}
    topic = get_topic(event_class)
    assert new_event_digest(event_class, topic, ORIGINATOR, 1, state) == event_digest(
        topic, ORIGINATOR, 1, state
    )


def test_a_lone_surrogate_fails_as_the_canonical_digest_does() -> None:
    event_class = EVENT_CLASSES["ContactLogged"]
    state = {"channel": "email", "outcome": "\ud800"}
    topic = get_topic(event_class)
    with pytest.raises(UnicodeEncodeError):
        event_digest(topic, ORIGINATOR, 1, state)
    with pytest.raises(UnicodeEncodeError):
        new_event_digest(event_class, topic, ORIGINATOR, 1, state)


def test_only_fields_that_may_hold_floats_or_objects_are_looked_at() -> None:
    assert _layout_of(EVENT_CLASSES["LeadScored"]).checked == (
        "engagement",
        "fit",
        "half_life_days",
        "previous_total",
        "total",
    )
    assert _layout_of(EVENT_CLASSES["LeadCaptured"]).checked == ("attributes",)
    assert _layout_of(EVENT_CLASSES["DealOpened"]).checked == ()
