"""Old stored events are upcast on read; the hash chain is checked on what was stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import uuid4

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from adapters.mapper import STORED_CLASS_BY_TOPIC, JSONTranscoder, PydanticMapper
from domain.aggregate import EventContext, build_event
from domain.event_state import stored_state
from domain.events import DomainEvent
from domain.hash_chain import GENESIS_HASH, StoredLink, event_digest, verify_chain


class ChannelNoted(DomainEvent):
    """Version 2 split the old free-text ``note`` into ``channel`` and ``detail``."""

    SCHEMA_VERSION: ClassVar[int] = 2
    channel: str
    detail: str

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        channel, _, detail = state.pop("note").partition(":")
        state["channel"] = channel
        state["detail"] = detail.strip()


class _TestMapper(PydanticMapper):
    """Stored topics resolve only to known classes: this test's event class is one."""

    stored_classes: ClassVar = {**STORED_CLASS_BY_TOPIC, get_topic(ChannelNoted): ChannelNoted}


def _v1_stored_event() -> tuple[StoredEvent, dict[str, Any]]:
    aggregate_id = uuid4()
    ctx = EventContext(actor="t", causation_id="c", correlation_id="c")
    current = build_event(
        ChannelNoted,
        aggregate_id,
        1,
        GENESIS_HASH,
        ctx,
        datetime(2025, 1, 1, tzinfo=UTC),
        {"channel": "x", "detail": "y"},
    )
    state = stored_state(current)
    # what a v1 writer stored: the old field, the old schema version
    state.pop("channel")
    state.pop("detail")
    state.update(note="email: sent the deck", schema_version=1)
    state["hash"] = event_digest(get_topic(ChannelNoted), str(aggregate_id), 1, state)
    stored = StoredEvent(
        originator_id=aggregate_id,
        originator_version=1,
        topic=get_topic(ChannelNoted),
        state=JSONTranscoder().encode(state),
    )
    return stored, state


def test_v1_state_is_upcast_to_current_model_on_read() -> None:
    stored, _ = _v1_stored_event()
    event = _TestMapper(transcoder=JSONTranscoder()).to_domain_event(stored)
    assert isinstance(event, ChannelNoted)
    assert (event.channel, event.detail, event.schema_version) == ("email", "sent the deck", 2)


def test_chain_verifies_on_stored_state_regardless_of_upcasting() -> None:
    stored, state = _v1_stored_event()
    mapper = PydanticMapper(transcoder=JSONTranscoder())
    link = StoredLink(stored.topic, str(stored.originator_id), 1, mapper.decode_state(stored))
    assert link.state == state
    assert verify_chain([link]).ok
