"""A new event is serialised once: the state dumped for its hash is the state stored.

The stored bytes (pydantic-core's JSON) must decode to exactly the state that was hashed,
so the chain verifies from the stored bytes, whatever the values (floats with exponents,
non-ASCII text, control characters, nesting).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.utils import get_topic
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.mapper import JSONTranscoder, PydanticMapper
from domain.aggregate import EventContext, build_event
from domain.event_state import stored_state
from domain.events import LeadCaptured
from domain.hash_chain import GENESIS_HASH, event_digest

CTX = EventContext(actor="tester", causation_id="cmd-1", correlation_id="cmd-1")
AT = datetime(2026, 5, 4, 12, 30, tzinfo=UTC)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=12,
)


def captured(attributes: dict[str, Any], aggregate_id: UUID | None = None) -> LeadCaptured:
    event = build_event(
        LeadCaptured,
        aggregate_id or uuid4(),
        1,
        GENESIS_HASH,
        CTX,
        AT,
        {"external_id": "ada@example.com", "source": "web", "campaign": None,
         "attributes": attributes},
    )  # fmt: skip
    assert isinstance(event, LeadCaptured)
    return event


@settings(max_examples=150, deadline=None)
@given(attributes=st.dictionaries(st.text(), json_values, max_size=5))
def test_stored_bytes_decode_to_the_hashed_state(attributes: dict[str, Any]) -> None:
    event = captured(attributes)
    stored = PydanticMapper(transcoder=JSONTranscoder()).to_stored_event(event)
    decoded = json.loads(stored.state)

    assert decoded == stored_state(event)
    assert decoded["hash"] == event.hash
    digest = event_digest(get_topic(LeadCaptured), str(event.originator_id), 1, decoded)
    assert digest == event.hash


def test_small_floats_are_stored_with_a_different_spelling_but_the_same_value() -> None:
    event = captured({"ratio": 1e-7, "name": "Zoë\u2028\x00"})
    stored = PydanticMapper(transcoder=JSONTranscoder()).to_stored_event(event)

    assert json.loads(stored.state)["attributes"] == {"ratio": 1e-7, "name": "Zoë\u2028\x00"}


def test_a_copy_of_an_event_is_stored_from_its_own_fields() -> None:
    event = captured({"industry": "saas"})
    altered = event.model_copy(update={"source": "import"})
    stored = PydanticMapper(transcoder=JSONTranscoder()).to_stored_event(altered)

    assert json.loads(stored.state)["source"] == "import"
    assert altered == event.model_copy(update={"source": "import"})
    assert event == LeadCaptured.model_validate(event.model_dump())
