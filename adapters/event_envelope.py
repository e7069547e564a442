"""An event read back from the store: the domain event, its stored state and its place in
the notification log. Stored topics resolve only to leadflow's own event classes."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import TopicError

from adapters.mapper import EVENT_CLASS_BY_TOPIC, PydanticMapper
from domain.event_state import upcast
from domain.events import DEAL_EVENTS, DomainEvent
from domain.personal_fields import PersonalData, open_state

# What decoding a stored event (decrypt, decompress, JSON, event class, validation) raises
# when its bytes or topic are not what leadflow wrote.
DECODE_ERRORS = (ValueError, KeyError, TypeError, TopicError, zlib.error)


@dataclass(frozen=True, slots=True)
class EventEnvelope:
    """A domain event with its position in the application's notification log.

    ``state`` is the event's state as stored, its personal fields sealed
    (``domain.personal_fields``): what the relay publishes and a dead letter keeps.
    ``event`` has them opened (or marked erased).
    """

    notification_id: int
    topic: str
    state: dict[str, Any]
    event: DomainEvent
    # the stored JSON of ``state`` when read from the event store (None from Kafka)
    stored_json: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def aggregate_type(self) -> str:
        return "deal" if type(self.event) in DEAL_EVENTS else "lead"


def event_from_state(
    topic: str,
    originator_id: UUID | str,
    originator_version: int,
    state: dict[str, Any],
    personal: PersonalData | None = None,
) -> DomainEvent:
    """The domain event of a stored state; its sealed personal fields opened by
    ``personal`` (without it, marked sealed)."""
    cls = EVENT_CLASS_BY_TOPIC.get(topic)  # looked up, never imported from the name
    if cls is None:
        msg = f"topic {topic!r} is not a leadflow domain event"
        raise ValueError(msg)
    if not isinstance(state, dict):
        msg = f"the state is a JSON {type(state).__name__}, not an object"
        raise ValueError(msg)  # a decoding error, as a wrong JSON text is
    data = upcast(cls, dict(open_state(cls, topic, state, personal)))
    data["originator_id"] = originator_id
    data["originator_version"] = originator_version
    return cls.model_validate(data)


def envelope_from_notification(
    mapper: PydanticMapper, notification: Notification, personal: PersonalData | None = None
) -> EventEnvelope:
    """The stored event: its state as stored (personal fields sealed), its domain event
    with them opened by ``personal`` (by default the mapper's)."""
    stored_json = mapper.plain_state(notification)
    state = mapper.transcoder.decode(stored_json)
    event = event_from_state(
        notification.topic,
        notification.originator_id,
        notification.originator_version,
        state,
        mapper.personal if personal is None else personal,
    )
    return EventEnvelope(notification.id, notification.topic, state, event, stored_json)
