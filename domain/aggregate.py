"""Base for leadflow's aggregates: state as a pydantic model, events applied in order."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Self, TypeVar
from uuid import UUID

from eventsourcing.utils import get_topic
from pydantic import BaseModel, ConfigDict, PrivateAttr, model_validator

from domain.deep_copy import SharesImmutables
from domain.errors import DamagedHistory
from domain.event_state import remember_stored_state, stored_state
from domain.events import DomainEvent
from domain.hash_chain import GENESIS_HASH
from domain.new_event_digest import new_event_digest
from domain.personal_fields import PersonalData, seal_state
from domain.random_ids import uuid4

GENERATED_CAUSATION_PREFIX = "generated:"


def generated_causation_id() -> str:
    """The causation id of a command that came without ``command_id``: never sent again."""
    return GENERATED_CAUSATION_PREFIX + secrets.token_hex(16)


def is_generated_causation(causation_id: str) -> bool:
    return causation_id.startswith(GENERATED_CAUSATION_PREFIX)


@dataclass(frozen=True, slots=True, kw_only=True)
class EventContext:
    """Who or what caused the events a command produces (from an already validated command)."""

    causation_id: str
    correlation_id: str
    actor: str = "system"
    # The command asked for a change dated before the last stage change to be recorded
    # at that change (see domain.business_time).
    backdated: bool = False
    on_behalf_of: str | None = None
    # seals the events' personal fields (``domain.personal_fields``); None: stored plain
    personal_data: PersonalData | None = None


def utc_now() -> datetime:
    return datetime.now(UTC)


class Aggregate(SharesImmutables):
    """Mutable state rebuilt from events; command methods validate, then trigger events."""

    model_config = ConfigDict(extra="forbid")

    KIND: ClassVar[str] = "aggregate"
    CREATED_BY: ClassVar[type[DomainEvent]]
    _registry: ClassVar[dict[type[DomainEvent], type[Aggregate]]] = {}

    id: UUID
    external_id: str
    version: int = 0
    created_on: datetime
    modified_on: datetime
    last_hash: str = GENESIS_HASH
    _pending: list[DomainEvent] = PrivateAttr(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _drop_retired_fields(cls, data: Any) -> Any:
        """Snapshots taken before the command ledger hold the ids seen (``causations``);
        idempotency is the ledger's now, so they are ignored."""
        if isinstance(data, dict) and "causations" in data:
            return {k: v for k, v in data.items() if k != "causations"}
        return data

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        created_by = cls.__dict__.get("CREATED_BY")
        if created_by is not None:
            Aggregate._registry[created_by] = cls

    @classmethod
    def _new(
        cls,
        event_class: type[DomainEvent],
        aggregate_id: UUID,
        ctx: EventContext,
        occurred_at: datetime,
        **payload: Any,
    ) -> Self:
        owner = cls.data_key_owner_of_new(aggregate_id, payload)
        event = build_event(
            event_class, aggregate_id, 1, GENESIS_HASH, ctx, occurred_at, payload, owner
        )
        aggregate = cls.from_created(event)
        aggregate.pending_events.append(event)
        return aggregate

    @classmethod
    def from_created(cls, event: DomainEvent) -> Self:
        raise NotImplementedError

    @classmethod
    def data_key_owner_of_new(cls, aggregate_id: UUID, payload: dict[str, Any]) -> UUID:
        """Whose data key seals the personal fields of the creation event."""
        return aggregate_id

    def data_key_owner(self) -> UUID:
        """Whose data key seals the personal fields of this aggregate's events."""
        return self.id

    def trigger(
        self,
        event_class: type[DomainEvent],
        ctx: EventContext,
        occurred_at: datetime,
        **payload: Any,
    ) -> DomainEvent:
        event = build_event(
            event_class,
            self.id,
            self.version + 1,
            self.last_hash,
            ctx,
            occurred_at,
            payload,
            self.data_key_owner(),
        )
        self.apply(event)
        self.pending_events.append(event)
        return event

    def apply(self, event: DomainEvent) -> None:
        getattr(self, f"_on_{type(event).__name__}")(event)
        self._advance(event)

    def _advance(self, event: DomainEvent) -> None:
        # what pydantic's assignment does for fields it does not validate, without its
        # per-attribute dispatch (three per event)
        fields = self.__dict__
        fields["version"] = event.originator_version
        fields["last_hash"] = event.hash
        fields["modified_on"] = event.timestamp
        self.__pydantic_fields_set__.update(_ADVANCED_FIELDS)

    def collect_events(self) -> list[DomainEvent]:
        events = self.pending_events
        self._private()["_pending"] = []
        return events

    @property
    def pending_events(self) -> list[DomainEvent]:
        pending: list[DomainEvent] = self._private()["_pending"]
        return pending

    def _private(self) -> dict[str, Any]:
        """The private attributes, read directly (``self._pending`` goes through pydantic's
        ``__getattr__``, a slow path taken several times per command)."""
        private = self.__pydantic_private__
        assert private is not None  # the model has private attributes
        return private


_ADVANCED_FIELDS = frozenset({"version", "last_hash", "modified_on"})


def build_event(
    event_class: type[DomainEvent],
    aggregate_id: UUID,
    version: int,
    prev_hash: str,
    ctx: EventContext,
    occurred_at: datetime,
    payload: dict[str, Any],
    key_owner: UUID | None = None,
) -> DomainEvent:
    """Construct the next event of an aggregate, chained to the one before it; its
    personal fields are sealed under ``key_owner``'s data key (the aggregate's by default)
    before it is hashed, so the chain covers their ciphertext. The event itself keeps
    them plain."""
    # validated as ``event_class(**fields)`` does, without the keyword arguments' detour;
    # the envelope comes last, so no payload can set it
    draft: DomainEvent = event_class.__pydantic_validator__.validate_python(
        {
            **payload,
            "originator_id": aggregate_id,
            "originator_version": version,
            "timestamp": utc_now(),
            "event_id": uuid4(),
            "occurred_at": occurred_at,
            "actor": ctx.actor,
            "on_behalf_of": ctx.on_behalf_of,
            "causation_id": ctx.causation_id,
            "correlation_id": ctx.correlation_id,
            "schema_version": event_class.SCHEMA_VERSION,
            "prev_hash": prev_hash,
            "hash": "",
        }
    )
    state = stored_state(draft)
    topic = get_topic(event_class)
    if ctx.personal_data is not None:
        seal_state(event_class, topic, key_owner or aggregate_id, state, ctx.personal_data)
    digest = new_event_digest(event_class, topic, str(aggregate_id), version, state)
    state["hash"] = digest
    draft.__dict__["hash"] = digest  # completed in place: nobody else holds the draft yet
    remember_stored_state(draft, state)
    return draft


class Snapshot(BaseModel):
    """An aggregate's state at a version, to avoid replaying long histories.

    ``chain_hash`` is its chain position: the hash of the event at its version (None in
    snapshots taken before it was recorded). With an audit key, ``seal`` is the key's
    signature over it (``seal_key_id`` names the key). A snapshot is a cache, proven
    before use (``service.snapshot_proof``)."""

    model_config = ConfigDict(frozen=True)

    originator_id: UUID
    originator_version: int
    timestamp: datetime
    topic: str
    state: dict[str, Any]
    chain_hash: str | None = None
    seal: str | None = None
    seal_key_id: str | None = None

    @classmethod
    def take(cls, aggregate: Aggregate) -> Snapshot:
        return cls(
            originator_id=aggregate.id,
            originator_version=aggregate.version,
            timestamp=utc_now(),
            topic=get_topic(type(aggregate)),
            state=aggregate.model_dump(mode="json"),
            chain_hash=aggregate.last_hash,
        )


A = TypeVar("A", bound=Aggregate)


def snapshot_class(snapshot: Snapshot) -> type[Aggregate]:
    """The aggregate class a snapshot's topic names: one of leadflow's aggregates, looked
    up, never imported from the name (ValueError otherwise)."""
    by_topic = {get_topic(cls): cls for cls in Aggregate._registry.values()}
    cls = by_topic.get(snapshot.topic)
    if cls is None:
        msg = (
            f"snapshot at version {snapshot.originator_version} of aggregate "
            f"{snapshot.originator_id} has topic {snapshot.topic!r}, which is not a leadflow "
            "aggregate"
        )
        raise ValueError(msg)
    return cls


def project_aggregate(aggregate: A | None, events: Iterable[Any]) -> A | None:
    """Repository projector: fold snapshots and events into an aggregate."""
    for event in events:
        if isinstance(event, Snapshot):
            aggregate = snapshot_class(event).model_validate(event.state)  # type: ignore[assignment]
        elif aggregate is None:
            created = Aggregate._registry.get(type(event))
            if created is None:
                raise DamagedHistory(
                    event.originator_id, event.originator_version, type(event).__name__
                )
            aggregate = created.from_created(event)  # type: ignore[assignment]
        else:
            aggregate.apply(event)
    return aggregate
