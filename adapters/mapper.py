"""Mapping pydantic events to stored events and back, with upcasting on read."""

from __future__ import annotations

import json
from typing import Any, cast
from uuid import UUID

import pydantic_core
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, ProgrammingError, StoredEvent, Transcoder, Transcoding
from eventsourcing.utils import get_topic, resolve_topic
from pydantic import BaseModel

from domain.event_state import stored_state, upcast
from domain.events import DomainEvent


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
        """The stored state's JSON bytes: decrypted and decompressed, not decoded."""
        data = stored.state
        if self.cipher:
            data = self.cipher.decrypt(data)
        if self.compressor:
            data = self.compressor.decompress(data)
        return data

    def decode_state(self, stored: StoredEvent) -> dict[str, Any]:
        """The stored state as it was written, before upcasting."""
        return cast(dict[str, Any], self.transcoder.decode(self.plain_state(stored)))

    def to_domain_event(self, stored: StoredEvent) -> DomainEventProtocol[UUID]:
        cls = resolve_topic(stored.topic)
        state = self.decode_state(stored)
        if issubclass(cls, DomainEvent):
            state = upcast(cls, state)
        state["originator_id"] = stored.originator_id
        state["originator_version"] = stored.originator_version
        return cast(DomainEventProtocol[UUID], cls.model_validate(state))
