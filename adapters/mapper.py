"""Mapping pydantic events to stored events and back, with upcasting on read.

A stored topic names a class by text; it is looked up among leadflow's own event classes
and the snapshot class (``STORED_CLASS_BY_TOPIC``), never imported from the name."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any, ClassVar, cast
from uuid import UUID

import pydantic_core
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, ProgrammingError, StoredEvent, Transcoder, Transcoding
from eventsourcing.utils import get_topic
from pydantic import BaseModel

from domain.aggregate import Snapshot, snapshot_class
from domain.event_state import stored_state, upcast
from domain.events import EVENT_CLASSES, DomainEvent
from domain.personal_fields import PersonalData, open_state

EVENT_CLASS_BY_TOPIC: dict[str, type[DomainEvent]] = {
    get_topic(cls): cls for cls in EVENT_CLASSES.values()
}
SNAPSHOT_TOPIC = get_topic(Snapshot)
STORED_CLASS_BY_TOPIC: dict[str, type[BaseModel]] = {
    **EVENT_CLASS_BY_TOPIC,
    SNAPSHOT_TOPIC: Snapshot,
}


class StoredEventError(ValueError):
    """A stored event leadflow cannot read back: the store is damaged, not leadflow."""

    def __init__(self, stored: StoredEvent, problem: str, what: str = "event") -> None:
        self.originator_id = stored.originator_id
        self.originator_version = stored.originator_version
        super().__init__(
            f"stored {what} {stored.originator_version} of aggregate {stored.originator_id} "
            f"{problem}"
        )


class UnknownStoredTopic(StoredEventError):
    """A stored event's topic that names no leadflow class: nothing is imported."""

    def __init__(self, stored: StoredEvent) -> None:
        self.topic = stored.topic
        super().__init__(stored, f"has topic {stored.topic!r}, which is not a leadflow event")


MAX_STORED_INT = 2**63 - 1  # the largest integer a column of either store holds


def stored_row_problem(stored: StoredEvent) -> str | None:
    """Why a stored row is not as leadflow writes it (SQLite keeps whatever a column is
    given: text for bytes, a word for a version), or None when its columns are."""
    if not isinstance(stored.originator_id, UUID):
        return "has an aggregate id that is not a UUID"
    version = stored.originator_version
    if type(version) is not int or not 0 < version <= MAX_STORED_INT:
        return f"has a version that is not a positive integer ({type(version).__name__})"
    if not isinstance(stored.topic, str):
        return f"has a topic that is not text ({type(stored.topic).__name__})"
    if stored.state is None:
        return "has an empty state"
    if not isinstance(stored.state, bytes):
        return f"has its state stored as {type(stored.state).__name__}, not bytes"
    return None


def require_readable_row(stored: StoredEvent) -> None:
    """A StoredEventError naming the row when its columns are not as leadflow writes them."""
    problem = stored_row_problem(stored)
    if problem is not None:
        what = "snapshot" if stored.topic == SNAPSHOT_TOPIC else "event"
        raise StoredEventError(stored, problem, what)


def stored_version(stored: StoredEvent) -> int | None:
    """The row's version, None when its column holds something else (a damaged row)."""
    version = stored.originator_version
    return version if type(version) is int else None


def raw_state(stored: StoredEvent) -> bytes:
    """The stored state's bytes as the row holds them, to show a damaged row."""
    state: object = stored.state
    if state is None:
        return b""
    if isinstance(state, bytes | bytearray | memoryview):
        return bytes(state)
    return str(state).encode("utf-8", errors="replace")


def stored_class(
    stored: StoredEvent, classes: Mapping[str, type[BaseModel]] = STORED_CLASS_BY_TOPIC
) -> type[BaseModel]:
    """The leadflow class a stored event's topic names (UnknownStoredTopic otherwise)."""
    cls = classes.get(stored.topic)
    if cls is None:
        raise UnknownStoredTopic(stored)
    return cls


class JSONTranscoder(Transcoder):
    """Plain JSON: pydantic already turned every value into a JSON type.

    Encoded by pydantic-core (compact UTF-8, like ``json.dumps`` with compact separators
    and ``ensure_ascii=False``, several times faster); only small floats' exponents are
    spelled differently (``1e-7`` for ``1e-07``), which decodes to the same value.
    Decoded by pydantic-core too (same values as ``json``, checked by the round-trip
    tests), falling back to ``json`` for what it refuses.
    """

    def encode(self, obj: Any) -> bytes:
        return pydantic_core.to_json(obj)

    def decode(self, data: bytes) -> Any:
        try:
            return pydantic_core.from_json(data)
        except ValueError:
            # json decodes what pydantic-core refuses (lone surrogate escapes) and words
            # the errors the audit reports for altered bytes
            return json.loads(data)

    def register(self, transcoding: Transcoding) -> None:
        msg = "leadflow events are pydantic models; transcodings are not used"
        raise ProgrammingError(msg)


class PydanticMapper(Mapper[UUID]):
    # the classes a stored topic may name (a subclass may add its own, e.g. in tests)
    stored_classes: ClassVar[Mapping[str, type[BaseModel]]] = STORED_CLASS_BY_TOPIC
    # opens sealed personal fields (``domain.personal_fields``); None: marked sealed
    personal: PersonalData | None = None

    def open_state(self, topic: str, state: dict[str, Any]) -> dict[str, Any]:
        """A stored event state with its sealed personal fields opened (or marked erased)."""
        cls = EVENT_CLASS_BY_TOPIC.get(topic)
        return state if cls is None else open_state(cls, topic, state, self.personal)

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        model = cast(BaseModel, domain_event)
        state = getattr(model, "_stored_state", None)
        data = self.transcoder.encode(state if state is not None else stored_state(model))
        if self.compressor:
            data = self.compressor.compress(data)
        if self.cipher:
            data = self.cipher.encrypt(data)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=get_topic(type(domain_event)),
            state=data,
        )

    def plain_state(self, stored: StoredEvent) -> bytes:
        """The stored state's JSON bytes: decrypted and decompressed, not decoded. Every
        decoding of a stored event starts here: a damaged row is a StoredEventError."""
        require_readable_row(stored)
        data = stored.state
        if self.cipher:
            data = self.cipher.decrypt(data)
        if self.compressor:
            data = self.compressor.decompress(data)
        return data

    def decode_state(self, stored: StoredEvent) -> dict[str, Any]:
        """The stored state as it was written, before upcasting (a JSON object)."""
        state = self.transcoder.decode(self.plain_state(stored))
        if not isinstance(state, dict):
            msg = f"the stored state is a JSON {type(state).__name__}, not an object"
            raise ValueError(msg)
        return state

    def to_domain_event(self, stored: StoredEvent) -> DomainEventProtocol[UUID]:
        cls = stored_class(stored, self.stored_classes)
        try:
            state = self.decode_state(stored)
            if issubclass(cls, DomainEvent):
                state = upcast(cls, open_state(cls, stored.topic, state, self.personal))
            state["originator_id"] = stored.originator_id
            state["originator_version"] = stored.originator_version
            decoded = cls.model_validate(state)
            if isinstance(decoded, Snapshot):
                snapshot_class(decoded)  # its aggregate is looked up, never imported
            return cast(DomainEventProtocol[UUID], decoded)
        except StoredEventError:
            raise
        except (ValueError, KeyError, TypeError, zlib.error) as error:
            problem = f"cannot be decoded: {type(error).__name__}: {error}"
            what = "snapshot" if cls is Snapshot else "event"
            raise StoredEventError(stored, problem, what) from error
